"""The shared leaf imports no service, no package imports another's server code, and the product
imports none of the test bench (tools/__init__.py draws the lines)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SERVICES = {"tracker", "seedbox", "client", "tools"}


PRODUCT = ["common", "tracker", "seedbox", "client", "tools/cli", "tools/demo"]
TEST_BENCH = ["tools.lab", "tools.sim", "tools.bench"]


def imports_of(package: str) -> set[tuple[str, str]]:
    """(file, module) for every absolute import in ``package`` (a folder), functions' own included."""
    found = set()
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(REPO)), a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(REPO)), node.module))
    return found


def test_common_is_a_leaf() -> None:
    bad = {(f, m) for f, m in imports_of("common") if m.split(".")[0] in SERVICES}
    assert not bad


@pytest.mark.parametrize("package", ["seedbox", "client"])
def test_services_talk_to_the_tracker_only_through_its_client_module(package: str) -> None:
    bad = {(f, m) for f, m in imports_of(package)
           if m.startswith("tracker") and m != "tracker.api_client"}
    assert not bad
    assert not {(f, m) for f, m in imports_of(package) if m.split(".")[0] == "tools"}


def test_tracker_imports_no_other_service() -> None:
    bad = {(f, m) for f, m in imports_of("tracker") if m.split(".")[0] in {"seedbox", "client", "tools"}}
    assert not bad


def within(module: str, packages: list[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("package", PRODUCT)
def test_the_product_imports_none_of_the_test_bench(package: str) -> None:
    bad = {(f, m) for f, m in imports_of(package) if within(m, TEST_BENCH)}
    assert not bad


def test_the_simulator_needs_no_lab_and_no_benchmark() -> None:
    assert not {(f, m) for f, m in imports_of("tools/sim") if within(m, ["tools.lab", "tools.bench"])}


def test_the_lab_needs_no_benchmark() -> None:
    assert not {(f, m) for f, m in imports_of("tools/lab") if within(m, ["tools.bench"])}


def test_tools_has_no_loose_modules_beside_its_packages() -> None:
    assert sorted(p.name for p in (REPO / "tools").glob("*.py")) == ["__init__.py"]
