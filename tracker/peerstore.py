"""Each worker's view of its swarms, written behind to the shared database.

An announce touches no database: it reads this worker's view of the swarm (reloaded from the
database when older than ``view_ttl``) and records itself in it. Recorded changes are flushed to
the database in one transaction every ``flush_interval`` by a background thread, so all workers
(and scrape, metrics, the page) see every peer within about ``view_ttl + flush_interval``. A
tracker killed outright loses at most one flush interval of announces, which peers repeat at
their next interval anyway.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger("modeltorrent.tracker")

_LOAD = text(
    "SELECT peer_id, ip, port, \"left\", first_seen, host_id, last_seen FROM peer WHERE release_id = :release_id"
)
_UPSERT = text(
    "INSERT INTO peer (release_id, peer_id, host_id, first_seen, ip, port, \"left\", uploaded, downloaded, last_seen)"
    " VALUES (:release_id, :peer_id, :host_id, :first_seen, :ip, :port, :left, :uploaded, :downloaded, :last_seen)"
    " ON CONFLICT (release_id, peer_id) DO UPDATE SET host_id = excluded.host_id, ip = excluded.ip,"
    " port = excluded.port, \"left\" = excluded.\"left\", uploaded = excluded.uploaded,"
    " downloaded = excluded.downloaded, last_seen = excluded.last_seen"
)
_DELETE = text("DELETE FROM peer WHERE release_id = :release_id AND peer_id = :peer_id")
_COMPLETED = text(
    "INSERT INTO completion (release_id, count) VALUES (:release_id, :count)"
    " ON CONFLICT (release_id) DO UPDATE SET count = completion.count + excluded.count"
)


class PeerRow(NamedTuple):
    peer_id: str
    ip: str
    port: int
    left: int
    first_seen: float
    host_id: int
    last_seen: float
    uploaded: int = 0
    downloaded: int = 0


class PeerStore:
    def __init__(self, engine: Engine, view_ttl: float = 1.0, flush_interval: float = 0.1) -> None:
        self.engine = engine
        self.view_ttl = view_ttl
        self.flush_interval = flush_interval
        self._views: dict[int, tuple[float, dict[str, PeerRow]]] = {}
        self._pending: dict[tuple[int, str], PeerRow | None] = {}  # None: the peer stopped
        self._inflight: dict[tuple[int, str], PeerRow | None] = {}  # being written by a flush
        self._completions: Counter[int] = Counter()
        self._lock = threading.Lock()  # guards _pending and _completions
        self._flush_lock = threading.Lock()  # one flush at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the announce path (one thread: the event loop) -------------------------------------------

    def record(self, release_id: int, row: PeerRow | None, peer_id: str, *, completed: bool, now: float) -> float:
        """Record an announce (``row`` None: the peer stopped); return the peer's first-seen time."""
        view = self._view(release_id, now)
        previous = view.get(peer_id)
        first_seen = previous.first_seen if previous is not None else now
        with self._lock:
            if completed and (previous is None or previous.left > 0):
                self._completions[release_id] += 1
            if row is None:
                view.pop(peer_id, None)
                self._pending[(release_id, peer_id)] = None
            else:
                row = PeerRow(peer_id, row.ip, row.port, row.left, first_seen, row.host_id, now,
                              row.uploaded, row.downloaded)
                view[peer_id] = row
                self._pending[(release_id, peer_id)] = row
        return first_seen

    def live(self, release_id: int, now: float, horizon: float) -> list[PeerRow]:
        return [r for r in self._view(release_id, now).values() if r.last_seen >= horizon]

    def _view(self, release_id: int, now: float) -> dict[str, PeerRow]:
        cached = self._views.get(release_id)
        if cached is not None and now - cached[0] <= self.view_ttl:
            return cached[1]
        with self.engine.connect() as conn:
            rows = conn.execute(_LOAD, {"release_id": release_id}).all()
        view = {pid: PeerRow(pid, ip, port, left, first, host, seen) for pid, ip, port, left, first, host, seen in rows}
        with self._lock:  # what this worker recorded but has not written yet wins over the database
            for (rid, pid), row in (self._inflight | self._pending).items():
                if rid != release_id:
                    continue
                if row is None:
                    view.pop(pid, None)
                else:
                    view[pid] = row
        self._views[release_id] = (now, view)
        return view

    # -- write-behind -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what was recorded since the last flush. On failure it stays pending."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                completions, self._completions = self._completions, Counter()
                self._inflight = pending
            if not pending and not completions:
                return
            upserts = [{"release_id": rid, "peer_id": row.peer_id, "host_id": row.host_id,
                        "first_seen": row.first_seen, "ip": row.ip, "port": row.port, "left": row.left,
                        "uploaded": row.uploaded, "downloaded": row.downloaded, "last_seen": row.last_seen}
                       for (rid, _), row in pending.items() if row is not None]
            deletes = [{"release_id": rid, "peer_id": pid} for (rid, pid), row in pending.items() if row is None]
            try:
                with self.engine.begin() as conn:
                    if upserts:
                        conn.execute(_UPSERT, upserts)
                    if deletes:
                        conn.execute(_DELETE, deletes)
                    for rid, count in completions.items():
                        conn.execute(_COMPLETED, {"release_id": rid, "count": count})
            except Exception:
                log.exception("flushing %d peer changes failed; retrying", len(pending))
                with self._lock:  # newer records made meanwhile win
                    self._pending = pending | self._pending
                    self._completions.update(completions)
            finally:
                with self._lock:
                    self._inflight = {}

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.flush_interval):
                self.flush()

        self._thread = threading.Thread(target=loop, name="peer-flush", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
