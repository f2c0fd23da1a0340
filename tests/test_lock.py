"""The checked-in lock (``requirements.lock``) agrees with ``pyproject.toml``.

Every install (README, ``.ci/run``, the Ansible role) takes its versions from the lock, so a
dependency added to or removed from ``pyproject.toml`` without refreshing the lock would install
something CI never tested. Refresh with the command in the lock's first lines (README, "Dependencies").
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
LOCK = REPO / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)")


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def direct_requirements() -> list[Requirement]:
    meta = project()
    return [Requirement(r) for r in meta["dependencies"]] + [
        Requirement(r) for extra in meta["optional-dependencies"].values() for r in extra]


def pinned() -> dict[str, list[Version]]:
    """Every pinned version per package (a universal lock may pin two, by Python version)."""
    pins: dict[str, list[Version]] = {}
    for line in LOCK.read_text().splitlines():
        if m := PIN.match(line):
            pins.setdefault(canonicalize_name(m[1]), []).append(Version(m[2]))
    return pins


def wanted_by_the_project() -> set[str]:
    """Packages the lock says it holds because pyproject.toml asks for them."""
    names, current = set(), ""
    for line in LOCK.read_text().splitlines():
        if m := PIN.match(line):
            current = canonicalize_name(m[1])
        elif "modeltorrent (pyproject.toml)" in line:
            names.add(current)
    return names


@pytest.mark.parametrize("requirement", direct_requirements(), ids=str)
def test_every_requirement_is_locked_at_a_version_it_allows(requirement: Requirement) -> None:
    versions = pinned().get(canonicalize_name(requirement.name))
    assert versions, f"{requirement.name} is not in requirements.lock: refresh the lock"
    bad = [str(v) for v in versions if not requirement.specifier.contains(v, prereleases=True)]
    assert not bad, f"requirements.lock pins {requirement.name}=={bad} outside {requirement}: refresh the lock"


def test_the_lock_holds_nothing_the_project_no_longer_asks_for() -> None:
    asked = {canonicalize_name(r.name) for r in direct_requirements()}
    assert wanted_by_the_project() == asked


def test_the_lock_covers_every_extra() -> None:
    command = LOCK.read_text().splitlines()[1]
    assert "uv pip compile pyproject.toml" in command
    for extra in project()["optional-dependencies"]:
        assert f"--extra {extra}" in command, f"the lock was made without the {extra!r} extra"


def test_every_install_command_uses_the_lock() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    role = (REPO / "ansible" / "roles" / "modeltorrent" / "tasks" / "main.yml").read_text()
    assert "pip install -c requirements.lock -e '.[test]'" in ci
    assert "pip install -c requirements.lock -e . && modeltorrent demo" in readme
    assert "pip install -c requirements.lock -e '.[test]' && python -m pytest" in readme
    assert "modeltorrent_constraints" in role
