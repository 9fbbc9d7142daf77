"""Imports run downward only, and the two halves of the package stay apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_neuro"
UPPER = ("hooks", "operators", "sensors", "triggers", "links")


def imported_modules(path: Path) -> set[str]:
    """Every airflow_neuro module a file imports, relative imports resolved."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
    return {name for name in found if name.split(".")[0] == "airflow_neuro"}


def sources(*parts: str) -> list[Path]:
    return sorted(
        path for part in parts for path in ((PACKAGE / part).rglob("*.py")
                                            if (PACKAGE / part).is_dir() else [PACKAGE / part])
    )  # fmt: skip


@pytest.mark.parametrize(
    "path", sources("client", "job_request.py", "exceptions.py"), ids=lambda p: p.name
)
def test_the_client_layer_imports_nothing_above_it(path: Path) -> None:
    upward = {
        name for name in imported_modules(path)
        if name.split(".")[1:2] and name.split(".")[1] in UPPER
    }  # fmt: skip
    assert not upward, f"{path.relative_to(PACKAGE)} imports {sorted(upward)}"


def test_the_local_platform_imports_nothing_of_the_plugin() -> None:
    for path in sources("localplatform"):
        foreign = {
            name for name in imported_modules(path)
            if not name.startswith("airflow_neuro.localplatform")
        }  # fmt: skip
        assert not foreign, f"{path.relative_to(PACKAGE)} imports {sorted(foreign)}"


def test_the_plugin_imports_nothing_of_the_local_platform() -> None:
    joiners = {PACKAGE / "cli.py", PACKAGE / "demo.py"}  # they start the platform on purpose
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in joiners or path.is_relative_to(PACKAGE / "localplatform"):
            continue
        local = {n for n in imported_modules(path) if n.startswith("airflow_neuro.localplatform")}
        assert not local, f"{path.relative_to(PACKAGE)} imports {sorted(local)}"
