"""The units ./deploy/test gives its processes (shared/testing/work_units.py)."""
from pathlib import Path

from shared.testing import work_units

ROOT = Path(__file__).resolve().parents[2]


def test_a_groups_files_are_one_unit_and_any_other_file_is_its_own():
    browser = work_units.unit_of("services/console/tests/browser/test_console_crawl.py::test_x")
    assert browser == work_units.unit_of("services/console/tests/browser/test_console_members.py::test_y[a]")
    assert work_units.unit_of("tests/journeys/test_journey_1_onboarding.py::t") == work_units.unit_of("tests/test_demo.py::t")
    assert work_units.unit_of("services/console/tests/service/test_console_pages.py::t") == \
        "services/console/tests/service/test_console_pages.py"
    assert work_units.unit_of("tests/test_platform_compose.py::t[x::y]") == "tests/test_platform_compose.py"


def test_every_path_the_units_name_exists():
    # a moved folder or file would quietly be spread a file at a time again, its fixture started in every process
    for prefixes in work_units.SHARED_FIXTURE_GROUPS.values():
        for prefix in prefixes:
            assert (ROOT / prefix).exists(), prefix
    for path in work_units.LONG_FILES:
        assert (ROOT / path).is_file(), path
