"""The shared leaf imports no service, and no package imports another's server code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SERVICES = {"tracker", "seedbox", "client", "tools"}


def imports_of(package: str) -> set[tuple[str, str]]:
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
