"""The shared library's layers stay one-directional (issue 14): every import of every module of shared/,
at module level and inside functions, read with ``ast``; no circle, nothing of deploy/ or a service,
declarations without plumbing, and the dev stack out of the production path."""
from __future__ import annotations

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent
ROOT = SHARED.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in SHARED.rglob("*.py") if "tests" not in p.relative_to(SHARED).parts}


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), wherever in the file the import is."""
    found: set[str] = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return found


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def _ours(name: str) -> set[str]:
    return {m for m in GRAPH[name] if m in MODULES and m != name}


def _reaches(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in _ours(todo.pop()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_walk_sees_the_library():
    assert {"shared.mongo", "shared.unit_of_work", "shared.messaging.outbox", "shared.events.base"} <= set(MODULES)
    assert "shared.messaging.outbox" in _ours("shared.unit_of_work")


def test_no_import_circle_in_shared():
    circles = sorted(name for name in MODULES if name in _reaches(name))
    assert not circles, f"modules on an import circle: {circles}"


def test_no_shared_module_imports_deploy_or_a_service():
    services = {"intake", "matching", "scheduling", "notifications", "deploy", "bench", "tests"}
    leaks = {name: sorted(m for m in imported if m.split(".")[0] in services)
             for name, imported in GRAPH.items()}
    assert not {name: found for name, found in leaks.items() if found}


def test_declarations_carry_no_plumbing():
    plumbing = ("shared.tracing", "shared.messaging", "shared.mongo", "shared.unit_of_work", "kafka", "pymongo")
    for name in (n for n in MODULES if n.startswith("shared.events")):
        reached = _reaches(name) | GRAPH[name]
        assert not [m for m in reached if m.startswith(plumbing)], name


def test_the_lowest_layers_import_nothing_of_ours():
    for name in ("shared.mongo", "shared.metrics", "shared.tracing"):
        assert not _ours(name), f"{name} imports {sorted(_ours(name))}"


def test_the_dev_stack_stays_out_of_what_the_services_run():
    for name in MODULES:
        if name.startswith(("shared.devstack", "shared.testing")):
            continue
        assert not [m for m in _reaches(name) | GRAPH[name] if m.startswith("shared.devstack")], name
