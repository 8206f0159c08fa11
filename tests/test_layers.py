"""Dependencies point one way (README "Design"): a test, so the layers cannot decay silently.

Every import counts, function-local ones included. The rules:

    pipelines  -> anything (wiring: Definitions, resources, the `sla` command)
    assets     -> sla, reports, connectors, pipelines.{resources,partitions,settings}
    connectors -> sla (they implement the domain's TicketSource port)
    reports    -> sla.report_data.models, sla.files, sla.months (typed data in, bytes out)
    sla        -> nothing of ours but sla; no Dagster
and no module imports itself through a ring of others.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sla", "connectors", "reports", "assets", "pipelines")

ALLOWED = {
    "sla": ("sla",),
    "connectors": ("sla", "connectors"),
    "reports": ("reports", "sla.report_data.models", "sla.files", "sla.months"),
    "assets": ("assets", "sla", "reports", "connectors", "pipelines.resources", "pipelines.partitions",
               "pipelines.settings"),
    "pipelines": PACKAGES,
}
FORBIDDEN_THIRD_PARTY = {
    "sla": ("dagster", "jinja2", "weasyprint", "plotly", "requests"),
    "connectors": ("dagster", "jinja2", "weasyprint", "plotly"),
    "reports": ("dagster", "duckdb"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


@cache
def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def resolve(name: str, known: dict[str, Path]) -> str | None:
    """The project module an import refers to (`from sla import warehouse` -> sla.warehouse)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def within(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@cache
def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: {t for t in (resolve(i, known) for i in imports(p)) if t and t != m} for m, p in known.items()}


@pytest.mark.parametrize("package", PACKAGES)
def test_dependencies_point_one_way(package):
    wrong = []
    for module, path in modules().items():
        if module.split(".")[0] != package:
            continue
        for target in sorted(graph()[module]):
            if not within(target, ALLOWED[package]):
                wrong.append(f"{module} imports {target}")
        for name in imports(path):
            if within(name, FORBIDDEN_THIRD_PARTY.get(package, ())):
                wrong.append(f"{module} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [])
    assert not cycles, "\n".join(cycles)
