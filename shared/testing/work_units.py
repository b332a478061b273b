"""How ``./deploy/test`` spreads the suite over several processes (pytest-xdist; ``-p shared.testing.work_units``).

Each process has its own broker and database (session fixtures), so any file can run in any process. What must
not be split is a fixture that starts something expensive for many files: the console's browser tests share one
whole platform and Chromium (package scope), the fault tests one platform they break (package scope), the
security tests one stack of every service (package scope), and the platform-level tests one whole platform
(``tests/conftest.py``, session scope). Spread a file at a time, those were started again in every process that
ran one of their files, and again each time a process came back to the package (four console platforms and three
fault platforms in one run, about 45 s each). So each such group is one unit of work. The longest units are
given out first, so that no process is left with a long one at the end: the groups, then the files that run
for a minute or so alone, then every other file, most tests first.
"""
from __future__ import annotations

import pytest

# Groups that share an expensive fixture: a node id under any of a group's prefixes is in the group's unit.
SHARED_FIXTURE_GROUPS = {
    "console browser tests (one platform and Chromium)": ("services/console/tests/browser/",),
    "fault tests (one platform, broken on purpose)": ("tests/reliability/",),
    "platform tests (tests/conftest.py's platform)": (
        "tests/journeys/", "tests/test_demo.py", "tests/test_platform_services_start.py",
        "tests/test_bench_console_smoke.py"),
    "security tests (one stack of every service)": ("tests/security/",),
}
# Files that take a minute or so on their own (each starts platforms or installs a tool).
LONG_FILES = (
    "tests/operations/test_backup_restore.py",
    "tests/operations/test_kubernetes_checkov.py",
    "tests/test_platform_local_runner.py",
    "tests/test_bench_faults_smoke.py",
    "tests/test_contract_subscribers.py",
)
FIRST = (*SHARED_FIXTURE_GROUPS, *LONG_FILES)


def unit_of(nodeid: str) -> str:
    """The unit of work a test belongs to: its group's name, or its file."""
    for group, prefixes in SHARED_FIXTURE_GROUPS.items():
        if nodeid.startswith(prefixes):
            return group
    return nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "loadfile":  # pyproject's default; another --dist asked for is honoured
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def _assign_work_unit(self, node) -> None:
            for unit in FIRST:  # the longest still waiting goes next
                if unit in self.workqueue:
                    self.workqueue.move_to_end(unit, last=False)
                    break
            super()._assign_work_unit(node)

    return SharedFixtureScheduling(config, log)
