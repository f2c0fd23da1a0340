"""The seedbox's libtorrent adapter: pull each missing piece from the source once, verify it
against the manifest, inject it into the swarm, then keep seeding.

Pieces are injected with ``add_piece`` as soon as they are verified, so peers receive piece 0
while later pieces are still crossing the ingress link. ``add_piece`` has no backpressure and
holds the GIL while it copies, so injection is paced on ``piece_finished_alert``
(``inject_window`` pieces in flight). On restart, libtorrent rechecks what is on disk and only
the missing pieces are read from the source again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import libtorrent as lt

from common.errors import PieceMismatch, SourceError
from common.layout import Layout
from common.lt_session import Caps, add_params, make_session
from common.manifest import Manifest
from seedbox.settings import SeedboxSettings
from seedbox.sources import Source

log = logging.getLogger("modeltorrent.seedbox")


@dataclass
class IngressStats:
    pieces_total: int
    pieces_done: int = 0  # verified and in the swarm (including found on disk)
    pieces_found_on_disk: int = 0
    bad_pieces: int = 0
    bytes_ingested: int = 0
    state: str = "starting"
    error: str = ""
    peers: int = 0
    uploaded: int = 0
    started: float = field(default_factory=time.monotonic)


class Seeder:
    def __init__(self, settings: SeedboxSettings, manifest: Manifest, layout: Layout,
                 torrent: bytes, source: Source) -> None:
        self.settings = settings
        self.manifest = manifest
        self.layout = layout
        self.torrent = torrent
        self.source = source
        self.stats = IngressStats(pieces_total=layout.num_pieces)
        self.stop = threading.Event()
        self.data_dir = settings.workdir / "data" / manifest.name / manifest.version
        self._expected = manifest.piece_digests()

    # -- source side --------------------------------------------------------------------------

    def fetch_verified(self, index: int) -> bytes:
        """Read a piece from the source until it matches the manifest.

        Raises PieceMismatch if the source keeps serving wrong bytes, SourceError if it fails.
        """
        span = self.layout.pieces[index]
        path = self.layout.files[span.file_index].path
        attempts = self.settings.fetch_retries + 1
        last: Exception | None = None
        for attempt in range(attempts):
            if self.stop.is_set():
                raise SourceError("stopped")
            try:
                data = self.source.read(path, span.file_offset, span.length)
            except SourceError as exc:
                last = exc
            else:
                digest = hashlib.sha256(data).digest()
                if digest == self._expected[index]:
                    return data
                self.stats.bad_pieces += 1
                last = PieceMismatch(index, path, self._expected[index].hex(), digest.hex())
                log.warning("source served wrong bytes for piece %d (attempt %d)", index, attempt + 1)
            time.sleep(min(0.2 * 2**attempt, 5.0))
        assert last is not None
        raise last

    # -- swarm side ---------------------------------------------------------------------------

    def run(self, on_tick: Callable[[IngressStats], None] | None = None) -> None:
        """Ingest every missing piece, then seed until ``stop`` is set.

        Raises PieceMismatch or SourceError if the source cannot deliver a correct piece.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ses = make_session(self.settings.listen, Caps(upload_rate=self.settings.upload_rate,
                                                      connections=self.settings.connections))
        handle = ses.add_torrent(add_params(self.torrent, str(self.data_dir)))
        ti = handle.torrent_file()
        try:
            self.stats.state = "checking"
            while handle.status().state in (lt.torrent_status.checking_files,
                                            lt.torrent_status.checking_resume_data):
                time.sleep(0.05)
            have = handle.status().pieces
            missing = [i for i in range(self.layout.num_pieces) if not (have and have[i])]
            self.stats.pieces_found_on_disk = self.stats.pieces_done = self.layout.num_pieces - len(missing)
            self.stats.state = "ingesting" if missing else "seeding"
            self._ingest(ses, handle, ti, missing, on_tick)
            self.stats.state = "seeding"
            while not self.stop.is_set():
                self._tick(ses, handle, on_tick)
                self.stop.wait(self.settings.status_interval)
        except Exception as exc:
            self.stats.state, self.stats.error = "failed", str(exc)
            if on_tick:
                on_tick(self.stats)
            raise
        finally:
            ses.remove_torrent(handle)
            del ses

    def _ingest(self, ses: lt.session, handle: lt.torrent_handle, ti: lt.torrent_info,
                missing: list[int], on_tick: Callable[[IngressStats], None] | None) -> None:
        if not missing:
            return
        in_flight: set[int] = set()
        next_tick = 0.0
        with ThreadPoolExecutor(self.settings.fetch_concurrency, thread_name_prefix="fetch") as pool:
            # Fetch ahead by the concurrency, inject in piece order so peers can start at once.
            futures: dict[int, Future[bytes]] = {}
            queue = list(missing)

            def top_up() -> None:
                while queue and len(futures) < self.settings.fetch_concurrency * 2:
                    index = queue.pop(0)
                    futures[index] = pool.submit(self.fetch_verified, index)

            top_up()
            order = list(missing)
            while order and not self.stop.is_set():
                for alert in ses.pop_alerts():
                    if isinstance(alert, lt.piece_finished_alert):
                        in_flight.discard(alert.piece_index)
                        self.stats.pieces_done += 1
                    elif isinstance(alert, lt.hash_failed_alert):
                        log.error("libtorrent rejected injected piece %d", alert.piece_index)
                        in_flight.discard(alert.piece_index)
                        order.append(alert.piece_index)
                        futures[alert.piece_index] = pool.submit(self.fetch_verified, alert.piece_index)
                if len(in_flight) < self.settings.inject_window and order[0] in futures \
                        and futures[order[0]].done():
                    index = order.pop(0)
                    data = futures.pop(index).result()  # raises if the source failed
                    padding = ti.piece_size(index) - len(data)
                    handle.add_piece(index, data + bytes(padding) if padding else data, 0)
                    in_flight.add(index)
                    self.stats.bytes_ingested += len(data)
                    top_up()
                else:
                    ses.wait_for_alert(50)
                if time.monotonic() >= next_tick:
                    self._tick(ses, handle, on_tick)
                    next_tick = time.monotonic() + self.settings.status_interval
            while in_flight and not self.stop.is_set():
                ses.wait_for_alert(100)
                for alert in ses.pop_alerts():
                    if isinstance(alert, lt.piece_finished_alert):
                        in_flight.discard(alert.piece_index)
                        self.stats.pieces_done += 1

    def _tick(self, ses: lt.session, handle: lt.torrent_handle,
              on_tick: Callable[[IngressStats], None] | None) -> None:
        st = handle.status()
        self.stats.peers = st.num_peers
        self.stats.uploaded = st.total_payload_upload
        if on_tick:
            on_tick(self.stats)
