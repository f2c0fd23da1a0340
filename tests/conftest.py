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


# -- real processes -----------------------------------------------------------------------------

ADMIN = "test-admin-token"


@pytest.fixture
def procs(tmp_path: Path):  # type: ignore[no-untyped-def]
    from tools.demo.procs import Procs

    running = Procs(tmp_path / "logs")
    yield running
    running.stop_all()


@pytest.fixture(scope="session")
def postgres():  # type: ignore[no-untyped-def]
    from tests.postgres import PostgresServer

    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The tracker's database: SQLite here; modules that claim PostgreSQL too override this."""
    return f"sqlite:///{tmp_path / 'tracker.db'}"


def both_databases(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres").new_database())
    return f"sqlite:///{tmp_path / 'tracker.db'}"


@pytest.fixture
def tracker_url(procs, db_url: str) -> str:  # type: ignore[no-untyped-def]
    from tools.demo.procs import start_tracker

    return start_tracker(procs, db_url, ADMIN, interval=2)


@pytest.fixture
def admin(tracker_url: str):  # type: ignore[no-untyped-def]
    from tracker.api_client import TrackerClient

    with TrackerClient(tracker_url, admin_token=ADMIN) as client:
        yield client


def publish_model(tmp_path: Path, tracker_url: str, key: Path, files: dict[str, int], *,
                  name: str = "m", version: str = "1", piece_size: int = 64 * 1024,
                  source: str | None = None, seed: int = 1, torrent_format: str = "v2",
                  republish: bool = False, stripes: int = 1) -> dict:
    from tools.cli.publish import publish

    model = write_model(tmp_path / f"external-{name}-{version}", files, seed=seed)
    return publish(model, name=name, version=version, key_path=key, source=source,
                   piece_size=piece_size, tracker=tracker_url, admin_token=ADMIN, out_dir=tmp_path / "out",
                   torrent_format=torrent_format, republish=republish, stripes=stripes)  # type: ignore[arg-type]
