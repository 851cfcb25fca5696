"""Data flows one way (DESIGN.md): SDK / OTel / gateway → ingest → call rows → billing jobs → dashboard.

Every import of the apps' .py files (migrations aside) is read with `ast`, those inside functions too, and held
against the import rules; a failure lists each offending import with its file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER_PACKAGES = {"observatory", "ingest", "billing", "gateway", "django"}


def is_dashboard_or_views(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "observatory" and (parts[1:2] == ["dashboard"] or any("views" in part for part in parts[1:]))


RULES: dict[str, tuple[str, Callable[[str], bool]]] = {
    "sdk": ("imports no server package", lambda module: module.split(".")[0] in SERVER_PACKAGES),
    "ingest": (
        "imports neither billing nor the dashboard or views",
        lambda module: module.split(".")[0] == "billing" or is_dashboard_or_views(module),
    ),
    "billing": ("imports neither the dashboard nor views", is_dashboard_or_views),
    "gateway": (
        "imports neither billing nor the dashboard or views (calls reach billing as call records, through ingest)",
        lambda module: module.split(".")[0] == "billing" or is_dashboard_or_views(module),
    ),
}


def is_module(dotted: str) -> bool:
    """A module or package of this repository (so `from observatory import views` counts as importing it)."""
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(source: str, package: str) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, at any depth; `package` resolves relative ones."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            parent = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            base = ".".join([*parent, *([node.module] if node.module else [])])
            yield node.lineno, base
            for alias in node.names:
                if is_module(f"{base}.{alias.name}"):
                    yield node.lineno, f"{base}.{alias.name}"


def python_files(app: str) -> Iterator[tuple[Path, str]]:
    """The app's .py files (migrations aside), each with its package name."""
    import_root = ROOT / "sdk" if app == "sdk" else ROOT
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" in path.parts or ".venv" in path.parts:
            continue
        parts = path.relative_to(import_root).with_suffix("").parts
        yield path, ".".join(parts if path.name == "__init__.py" else parts[:-1])


def violations(app: str) -> list[str]:
    _, forbidden = RULES[app]
    found = set()
    for path, package in python_files(app):
        relative = path.relative_to(ROOT).as_posix()
        for line, module in imported_modules(path.read_text(), package):
            if forbidden(module):
                found.add((relative, line, module))
    return [f"{relative}:{line} imports {module}" for relative, line, module in sorted(found)]


@pytest.mark.parametrize("app", RULES)
def test_it_holds_the_import_rules(app):
    rule, _ = RULES[app]

    found = violations(app)

    assert not found, f"{app} {rule}, but:\n" + "\n".join(found)


def test_it_reads_imports_inside_functions_and_relative_ones():
    source = (
        "from . import normalize\n"
        "from ..models import LLMCall\n"
        "def price():\n"
        "    from billing.pricing.at_ingest import price_for_ingest\n"
        "    import observatory.views\n"
        "    from observatory import dashboard\n"
    )

    found = list(imported_modules(source, "ingest.mappers"))

    assert found == [
        (1, "ingest.mappers"), (1, "ingest.mappers.normalize"), (2, "ingest.models"), (4, "billing.pricing.at_ingest"),
        (5, "observatory.views"), (6, "observatory"), (6, "observatory.dashboard"),
    ]
