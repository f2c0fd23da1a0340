"""Each worker's view of its swarms, written behind to the shared database.

An announce touches no database: it reads this worker's view of the swarm and records itself in
it. A background thread flushes recorded changes to the database in one transaction every
``flush_interval`` and then reloads the views older than ``view_ttl`` (laying over them what this
worker recorded since), so all workers (and scrape, metrics, the page) see every peer within about
``view_ttl + flush_interval``, and no announce waits for the database except the first of a swarm.
A tracker killed outright loses at most one flush interval of announces, which peers repeat at
their next interval anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
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


class View:
    """One swarm as this worker sees it. ``version`` changes whenever a peer joins, leaves or changes
    what others are told about it, and at every reload, so that data derived from the view (the
    swarm's peer index) knows when to rebuild."""

    __slots__ = ("rows", "loaded_at", "version")

    def __init__(self, rows: dict[str, PeerRow], loaded_at: float, version: int) -> None:
        self.rows = rows
        self.loaded_at = loaded_at
        self.version = version


def _same_for_others(a: PeerRow, b: PeerRow) -> bool:
    return a.ip == b.ip and a.port == b.port and a.left == b.left and a.host_id == b.host_id


class PeerStore:
    def __init__(self, engine: Engine, view_ttl: float = 1.0, flush_interval: float = 0.1,
                 refresh: Callable[[float], None] | None = None) -> None:
        self.engine = engine
        self.view_ttl = view_ttl
        self.flush_interval = flush_interval
        self._refresh_others = refresh  # more background refreshing, done by the same thread
        self._views: dict[int, View] = {}
        self._versions = 0
        self._pending: dict[int, dict[str, PeerRow | None]] = {}  # by swarm; None: the peer stopped
        self._completions: Counter[int] = Counter()
        self._lock = threading.Lock()  # guards the views, _pending and _completions
        self._flush_lock = threading.Lock()  # one flush or reload at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the announce path (one thread: the event loop) -------------------------------------------

    def record(self, release_id: int, row: PeerRow | None, peer_id: str, *, completed: bool, now: float) -> float:
        """Record an announce (``row`` None: the peer stopped); return the peer's first-seen time."""
        self.view(release_id)
        with self._lock:
            view = self._views[release_id]  # the background reload may just have replaced it
            previous = view.rows.get(peer_id)
            first_seen = previous.first_seen if previous is not None else now
            if completed and (previous is None or previous.left > 0):
                self._completions[release_id] += 1
            if row is None:
                if view.rows.pop(peer_id, None) is not None:
                    view.version = self._next_version()
                self._pending.setdefault(release_id, {})[peer_id] = None
            else:
                row = PeerRow(peer_id, row.ip, row.port, row.left, first_seen, row.host_id, now,
                              row.uploaded, row.downloaded)
                view.rows[peer_id] = row
                if previous is None or not _same_for_others(previous, row):
                    view.version = self._next_version()
                self._pending.setdefault(release_id, {})[peer_id] = row
        return first_seen

    def view(self, release_id: int) -> View:
        """The swarm as this worker sees it: loaded here the first time, kept fresh in the background."""
        view = self._views.get(release_id)
        return view if view is not None else self._load(release_id)

    def _next_version(self) -> int:
        self._versions += 1
        return self._versions

    def _load(self, release_id: int) -> View:
        """Read a swarm from the database and lay over it what this worker has not written yet."""
        # No flush between the read and the overlay: a row flushed in between would be in neither.
        with self._flush_lock:
            loaded_at = time.time()
            with self.engine.connect() as conn:
                rows = conn.execute(_LOAD, {"release_id": release_id}).all()
            old = self._views.get(release_id)
            known = old.rows if old is not None else {}
            fresh: dict[str, PeerRow] = {}
            same = len(rows) == len(known)
            for pid, ip, port, left, first, host, seen in rows:
                mine = known.get(pid)
                if mine is not None and mine.last_seen == seen:
                    fresh[pid] = mine  # what this worker wrote: nothing to build
                    continue
                row = PeerRow(pid, ip, port, left, first, host, seen)
                fresh[pid] = row
                same = same and mine is not None and _same_for_others(mine, row)
            with self._lock:
                for pid, change in self._pending.get(release_id, {}).items():
                    if change is None:
                        same = same and pid not in fresh
                        fresh.pop(pid, None)
                    else:
                        same = same and pid in fresh
                        fresh[pid] = change
                # Re-announces only move last_seen: the same version keeps the swarm's index.
                current = self._views.get(release_id)
                same = same and current is old
                view = View(fresh, loaded_at, old.version if same and old is not None else self._next_version())
                self._views[release_id] = view
        return view

    def refresh(self, now: float) -> None:
        """Reload the views older than ``view_ttl``, so that peers announcing to other workers show up."""
        for release_id, view in list(self._views.items()):
            if now - view.loaded_at > self.view_ttl:
                self._load(release_id)

    # -- write-behind -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write what was recorded since the last flush. On failure it stays pending."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                completions, self._completions = self._completions, Counter()
            if not pending and not completions:
                return
            upserts = [{"release_id": rid, "peer_id": row.peer_id, "host_id": row.host_id,
                        "first_seen": row.first_seen, "ip": row.ip, "port": row.port, "left": row.left,
                        "uploaded": row.uploaded, "downloaded": row.downloaded, "last_seen": row.last_seen}
                       for rid, rows in pending.items() for row in rows.values() if row is not None]
            deletes = [{"release_id": rid, "peer_id": pid}
                       for rid, rows in pending.items() for pid, row in rows.items() if row is None]
            try:
                with self.engine.begin() as conn:
                    if upserts:
                        conn.execute(_UPSERT, upserts)
                    if deletes:
                        conn.execute(_DELETE, deletes)
                    for rid, count in completions.items():
                        conn.execute(_COMPLETED, {"release_id": rid, "count": count})
            except Exception:
                log.exception("flushing %d peer changes failed; retrying", len(upserts) + len(deletes))
                with self._lock:  # newer records made meanwhile win
                    for rid, rows in pending.items():
                        self._pending[rid] = rows | self._pending.get(rid, {})
                    self._completions.update(completions)

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.flush_interval):
                self.flush()
                try:
                    self.refresh(time.time())
                    if self._refresh_others is not None:
                        self._refresh_others(time.time())
                except Exception:  # the database may be back at the next pass
                    log.exception("refreshing swarm views failed")

        self._thread = threading.Thread(target=loop, name="peer-flush", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()
