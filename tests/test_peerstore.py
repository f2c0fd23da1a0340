"""The per-worker peer store: laying database reads over a view (table-driven), and two stores on
one database behaving as two tracker workers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session

from tests.conftest import both_databases
from tracker.db import make_engine
from tracker.models import Host, Release
from tracker.peerstore import Announced, PeerRow, PeerStore, merge


def row(pid: str, seen: float, *, left: int = 5, port: int = 1) -> PeerRow:
    return PeerRow(1, pid, 1, 0.0, "10.0.0.1", port, left, 0, 0, seen, seen + 150)


READ_AT = 100.0
MERGE_CASES = [
    # name, current, read, stopped, expected (peer -> last_seen), same for others
    ("reannounce elsewhere keeps the index", {"a": row("a", 90)}, [row("a", 95)], {}, {"a": 95}, True),
    ("newer record here wins over an older read", {"a": row("a", 101)}, [row("a", 95)], {}, {"a": 101}, True),
    ("a peer joining elsewhere", {}, [row("b", 95)], {}, {"b": 95}, False),
    ("a changed peer", {"a": row("a", 90)}, [row("a", 95, left=0)], {}, {"a": 95}, False),
    ("gone from the database: stopped elsewhere or expired", {"a": row("a", 90)}, [], {}, {}, False),
    ("recorded here after the read began: on its way", {"a": row("a", 100.5)}, [], {}, {"a": 100.5}, True),
    ("stopped here: an older read does not bring it back", {}, [row("a", 90)], {"a": 96.0}, {}, True),
    ("stopped here, then announced elsewhere", {}, [row("a", 99)], {"a": 96.0}, {"a": 99}, False),
]


@pytest.mark.parametrize("current,read,stopped,expected,same", [c[1:] for c in MERGE_CASES],
                         ids=[c[0] for c in MERGE_CASES])
def test_merge(current: dict[str, PeerRow], read: list[PeerRow], stopped: dict[str, float],
               expected: dict[str, float], same: bool) -> None:
    fresh, unchanged = merge(current, [tuple(r) for r in read], READ_AT, stopped)
    assert {pid: r.last_seen for pid, r in fresh.items()} == expected
    assert unchanged is same
    assert all(isinstance(r, PeerRow) for r in fresh.values())


def test_merge_keeps_this_workers_objects() -> None:
    mine = row("a", 101)
    fresh, _ = merge({"a": mine}, [tuple(row("a", 101))], READ_AT, {})
    assert fresh["a"] is mine


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
    return both_databases(request, tmp_path)


def test_two_workers_see_each_others_peers(database: str) -> None:
    engine = make_engine(database)
    with Session(engine) as session:
        release = Release(name="m", version="1", root="0" * 64, total_size=100, num_pieces=1, info_hash_v1="a" * 40,
                          info_hash_v2="b" * 40, manifest="{}", torrent=b"x")
        host = Host(name="h", location="r1", passkey="k" * 32)
        session.add(release)
        session.add(host)
        session.commit()
        rid, hid = release.id, host.id
    assert rid is not None and hid is not None
    one, two = PeerStore(engine, view_ttl=0.0), PeerStore(engine, view_ttl=0.0)
    assert one.view(rid).rows == {} and two.view(rid).rows == {}

    def announce(store: PeerStore, left: int | None, completed: bool = False) -> float:
        announced = None if left is None else Announced(hid, "10.0.0.1", 6881, left, 0, 0)
        return store.record(rid, "p1", announced, completed=completed, now=time.time())

    first = announce(one, 100)
    assert announce(one, 50) == first
    version = one.view(rid).version
    one.flush()
    two.refresh(time.time())
    seen = two.view(rid).rows["p1"]
    assert (seen.left, seen.first_seen) == (50, first)

    # Only last_seen moves: the view keeps its version, so the swarm's index is kept.
    announce(one, 50)
    assert one.view(rid).version == version
    one.flush()
    one.refresh(time.time())
    assert one.view(rid).version == version

    # A completion is counted once; a stop reaches the other worker; an older read does not undo it.
    announce(one, 0, completed=True)
    announce(one, 0, completed=True)
    read_at = time.time()
    stale_read = one._read([rid])
    announce(one, None)
    one._apply(stale_read, read_at, [rid])
    assert "p1" not in one.view(rid).rows
    one.flush()
    two.refresh(time.time())
    assert "p1" not in two.view(rid).rows
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count FROM completion").scalar() == 1
    engine.dispose()


def test_two_trackers_started_at_once_on_a_fresh_database_both_migrate_it(database: str) -> None:
    """A failover pair (or several workers) started together: each brings the schema to head; none
    fails on another's tables (seen before the migration lock: "duplicate key ... alembic_version"
    on PostgreSQL, "table alembic_version already exists" on SQLite). Separate processes, as trackers are."""
    code = ("import sys, time; from tracker.db import make_engine; "
            "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); make_engine(sys.argv[1]).dispose()")
    at = str(time.time() + 8)  # imported by then: they migrate at the same moment
    trackers = [subprocess.Popen([sys.executable, "-c", code, database, at], stderr=subprocess.PIPE, text=True)
                for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in trackers]
    assert [p.returncode for p in trackers] == [0] * 6, "\n".join(e[-1500:] for e in errors)
