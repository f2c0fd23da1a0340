"""Shared fixtures: generated models, publisher keys."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from common import signing

REPO = Path(__file__).resolve().parent.parent


def write_model(root: Path, files: dict[str, int], seed: int = 1) -> Path:
    """Write files of pseudo-random bytes (repeatable for a seed) under ``root``."""
    rng = random.Random(seed)
    for rel, size in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
    return root


@pytest.fixture
def publisher_key(tmp_path: Path) -> Path:
    key = tmp_path / "keys" / "publisher.key"
    signing.generate_key(key)
    return key


@pytest.fixture(autouse=True)
def _no_user_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Never read or write the developer's own ~/.config during tests.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    os.makedirs(tmp_path / "home", exist_ok=True)
