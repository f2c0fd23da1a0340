"""The seedbox's libtorrent adapter: pull each missing piece from the source once, hand it to the
swarm, then keep seeding.

Bytes from the source land in a spool file per piece as they arrive. A whole spooled piece is
offered to libtorrent through the seedbox's own web seed on loopback (``webseed.py``: ``sendfile``
from the spool, no copy through Python), so peers receive piece 0 while later pieces are still
crossing the ingress link. libtorrent checks every block against the torrent's v2 hashes, which
are the signed manifest's piece roots (``common.torrent.check_matches``), so that check is the
seedbox's only hash of each byte: a piece it rejects (``hash_failed_alert``) is bytes the source
got wrong, read again and never seeded, and a source that keeps serving wrong bytes fails the
seedbox. libtorrent decides what it asks the web seed for; a request waits for its piece's read,
and the seeder reads ahead in the order it will be asked (index order in a fresh swarm; after a
restart, what no host holds first, while libtorrent takes from hosts what they hold).

A spool file goes once libtorrent has written its piece (a flush passed it). So a seedbox killed
mid-read loses nothing it was sent: on restart libtorrent rechecks what is on disk, a whole
spooled piece is offered as it is, and a partial one is read from where it stopped (a range
request for the rest).
"""

from __future__ import annotations

import heapq
import logging
import random
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libtorrent as lt

from common import ondisk
from common import torrent as torrents
from common.backoff import backoff_delay
from common.errors import PieceMismatch, SourceError
from common.hashing import piece_root
from common.layout import Layout
from common.lt_session import Bans, Caps, add_params, alert_message, make_session
from common.manifest import Manifest
from common.peer_identity import PeerIdentity
from seedbox.parts import part_bounds
from seedbox.settings import SeedboxSettings
from seedbox.sources import Source
from seedbox.webseed import SpoolServer

log = logging.getLogger("modeltorrent.seedbox")
_rng = random.Random()  # retry jitter: spread, not secrecy
WEBSEED_HOLD = 3600.0  # seconds a web seed request waits for its piece's read


@dataclass
class IngressStats:
    pieces_total: int
    pieces_done: int = 0  # verified and in the swarm (including found on disk)
    pieces_found_on_disk: int = 0
    pieces_from_swarm: int = 0  # downloaded from hosts that held them (after a restart), not read
    bad_pieces: int = 0  # read from the source with bytes that did not hash to the manifest's root
    bytes_ingested: int = 0  # read from the source and handed to libtorrent
    bytes_via_webseed: int = 0  # sent to libtorrent by the spool's web seed (end game sends some twice)
    bytes_done: int = 0  # in pieces that are in the swarm
    state: str = "starting"
    error: str = ""
    peers: int = 0
    uploaded: int = 0
    started: float = field(default_factory=time.monotonic)


def next_pieces(queue: list[int], availability: list[int], n: int) -> list[int]:
    """The ``n`` pieces to ask of the source next: those the fewest peers hold first (none, in a
    fresh swarm: then in index order, so hosts can start on piece 0 while the rest arrives; after
    a seedbox restart, pieces the hosts already pass among themselves wait until the rest is in)."""
    def held(i: int) -> int:
        return availability[i] if i < len(availability) else 0

    return heapq.nsmallest(n, queue, key=lambda i: (held(i), i))


def held_by_hosts(handles: list[lt.torrent_handle], num_pieces: int) -> list[int]:
    """How many connected hosts hold each piece, from their bitfields (libtorrent's
    ``piece_availability`` counts the web seed too, as holding every piece, while it is connected)."""
    counts = [0] * num_pieces
    for handle in handles:
        for peer in handle.get_peer_info():
            if peer.connection_type == lt.peer_info.standard_bittorrent and peer.pieces:
                counts = [c + bool(h) for c, h in zip(counts, peer.pieces, strict=False)]
    return counts


class Torrents:
    """The seedbox's torrents of one version in its session: the version's torrent, or one per
    stripe (``common/torrent.py``), each wanting only its stripe's pieces (piece i is stripe
    i % K's), all over the same files: every piece is taken from the web seed and written once,
    by its stripe, and seeded in its stripe's swarm."""

    def __init__(self, ses: lt.session, torrent: bytes, stripes: int, save_path: str, num_pieces: int,
                 on_disk: set[int] | None = None) -> None:
        """``on_disk``: pieces already checked on disk against the manifest, given to every stripe
        as had (None: libtorrent checks the disk, once per torrent)."""
        self.stripes = stripes
        self.handles = []
        had = [i in on_disk for i in range(num_pieces)] if on_disk else None  # the same for every stripe
        for k in range(stripes):
            params = add_params(torrent if stripes == 1 else torrents.stripe_torrent(torrent, k, stripes), save_path)
            if stripes > 1:
                params.piece_priorities = torrents.stripe_priorities(num_pieces, k, stripes)
            if had:
                params.have_pieces = had
            # Paused once checked, until ``resume``: what is on disk is counted before a host can
            # hand over a piece (seen in CI: two pieces downloaded in the moment between the check
            # and the look were counted as found on disk).
            params.flags |= lt.torrent_flags.stop_when_ready
            self.handles.append(ses.add_torrent(params))

    def resume(self) -> None:
        for h in self.handles:
            h.resume()

    def of(self, piece: int) -> lt.torrent_handle:
        return self.handles[piece % self.stripes]

    def checking(self) -> bool:
        return any(h.status().state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
                   for h in self.handles)

    def have(self, num_pieces: int) -> list[bool]:
        """Which pieces are on disk, each as its own stripe has it."""
        bits = [s.pieces for s in (h.status() for h in self.handles)]
        return [bool(bits[i % self.stripes]) and bool(bits[i % self.stripes][i]) for i in range(num_pieces)]

    def flush(self) -> int:
        """Ask every torrent to flush; returns how many ``cache_flushed_alert`` will answer."""
        for h in self.handles:
            h.flush_cache()
        return len(self.handles)

    def set_flags(self, flags: int, on: bool) -> None:
        for h in self.handles:
            h.set_flags(flags) if on else h.unset_flags(flags)

    def url_seeds(self, urls: list[str], add: bool) -> None:
        for h in self.handles:
            for url in urls:
                h.add_url_seed(url) if add else h.remove_url_seed(url)

    def peers_named(self, replies: dict[int, int]) -> int | None:
        """Peers the tracker named to all torrents (``replies``: per torrent), None until each replied."""
        return sum(replies.values()) if len(replies) == len(self.handles) else None

    def peers_connected(self) -> int:
        return sum(len(h.get_peer_info()) for h in self.handles)

    def remove(self, ses: lt.session) -> None:
        for h in self.handles:
            ses.remove_torrent(h)


def seedbox_slots(per_swarm: int, stripes: int) -> int:
    """The seedbox's session-wide upload slots: ``per_swarm`` for each stripe's torrent.
    libtorrent's ``unchoke_slots_limit`` is the session's, and the seedbox holds every stripe's
    torrent in one session: with 4 slots for 4 stripes x 2 racks, half the stripes' gateways waited
    choked at any moment (docs/fleet-suite-report.md, "The seedbox's upload slots")."""
    return per_swarm * max(1, stripes)


class Seeder:
    def __init__(self, settings: SeedboxSettings, manifest: Manifest, layout: Layout,
                 torrent: bytes, source: Source, swarm_holds: Callable[[], bool] | None = None,
                 stripes: int = 1, identity: PeerIdentity | None = None) -> None:
        """``identity``: the seedbox's peer certificate, for an SSL torrent (``common/peer_certs.py``)."""
        self.settings = settings
        self.identity = identity
        self.bans = Bans()  # the addresses of revoked hosts (peer authentication), refused
        self.stripes = stripes
        # Whether any host says it holds pieces of this version (None: assume so). A fresh publish
        # skips the wait for the swarm's bitfields: there is nothing to learn from them.
        self.swarm_holds = swarm_holds
        self.manifest = manifest
        self.layout = layout
        self.torrent = torrent
        self.source = source
        self.stats = IngressStats(pieces_total=layout.num_pieces)
        self.stop = threading.Event()
        self.data_dir = settings.workdir / "data" / manifest.name / manifest.version
        self.spool_dir = settings.workdir / "spool" / manifest.name / manifest.version
        self._expected = manifest.piece_digests()

    # -- source side --------------------------------------------------------------------------

    def spool(self, index: int, attempt: int = 0) -> None:
        """Read a piece from the source into its spool file in one read (``spool_part``)."""
        self.spool_part(index, (0, self.layout.pieces[index].length), attempt)

    def spool_part(self, index: int, bounds: tuple[int, int], attempt: int = 0) -> None:
        """Read bytes ``bounds`` (``seedbox/parts.py``) of a piece from the source into the spool:
        the whole piece into ``<index>``, a part into ``<index>.<start>`` (``spool_files``).
        What an earlier read left there is kept, and a piece already whole in the spool is not read
        again. Not checked here: libtorrent checks it when it takes the piece. ``attempt`` > 0
        waits a backoff first. Raises SourceError if the source keeps failing."""
        if attempt:
            time.sleep(backoff_delay(attempt, 0.2, 5.0, _rng))
        span = self.layout.pieces[index]
        path = self.layout.files[span.file_index].path
        whole = self.spool_dir / str(index)
        start, end = bounds
        if (start, end) != (0, span.length) and whole.exists() and whole.stat().st_size >= span.length:
            return  # joined before a restart
        spool = whole if (start, end) == (0, span.length) else self.spool_dir / f"{index}.{start}"
        last: SourceError | None = None
        for retry in range(self.settings.fetch_retries + 1):
            if self.stop.is_set():
                raise SourceError("stopped")
            if retry:
                time.sleep(backoff_delay(retry, 0.2, 5.0, _rng))
            try:
                with open(spool, "ab") as out:  # appends: what an earlier read left is kept
                    have = out.tell()
                    if have < end - start:
                        self.source.read_into(path, span.file_offset + start + have, end - start - have, out)
                return
            except SourceError as exc:
                last = exc
        assert last is not None
        raise last

    def _parts(self, index: int) -> list[tuple[int, int]]:
        return part_bounds(self.layout.pieces[index].length, self.settings.fetch_concurrency,
                           self.settings.read_part_min)

    def spool_files(self, index: int) -> list[tuple[Path, int, int]]:
        """The spool files holding a piece, each with the range of the piece it holds, in order:
        the whole piece's file if there is one (read in one part, or joined by an earlier version),
        else its parts (``spool_part``), which the web seed sends as they are."""
        whole = self.spool_dir / str(index)
        bounds = self._parts(index)
        if len(bounds) == 1 or whole.exists():
            return [(whole, 0, self.layout.pieces[index].length)]
        return [(self.spool_dir / f"{index}.{start}", start, end) for start, end in bounds]

    def spooled_bytes(self, index: int) -> bytes:
        """A spooled piece's bytes (its parts back to back)."""
        return b"".join(path.read_bytes() for path, _, _ in self.spool_files(index))

    def fetch(self, index: int, attempt: int = 0) -> bytes:
        """A piece's bytes, read through its spool (``spool``)."""
        self.spool(index, attempt)
        return (self.spool_dir / str(index)).read_bytes()

    def _wrong_bytes(self, index: int, data: bytes, attempt: int) -> None:
        """The source served bytes that do not hash to the manifest's root: drop them; raise
        PieceMismatch once the source has had its retries."""
        span = self.layout.pieces[index]
        path = self.layout.files[span.file_index].path
        self.stats.bad_pieces += 1
        self._unspool(index)
        log.warning("source served wrong bytes for piece %d (attempt %d)", index, attempt + 1)
        if attempt >= self.settings.fetch_retries:
            raise PieceMismatch(index, path, self._expected[index].hex(),
                                piece_root(data[:span.length], span, self.layout).hex())

    def fetch_checked(self, index: int) -> bytes:
        """Read a piece and hash it here, for a seedbox that writes to disk itself (not streaming).
        Raises PieceMismatch if the source keeps serving wrong bytes, SourceError if it fails."""
        span = self.layout.pieces[index]
        for attempt in range(self.settings.fetch_retries + 1):
            data = self.fetch(index, attempt)
            if piece_root(data, span, self.layout) == self._expected[index]:
                return data
            self._wrong_bytes(index, data, attempt)
        raise AssertionError("unreachable: _wrong_bytes raises on the last attempt")

    def _unspool(self, index: int) -> None:
        """The piece is on disk under libtorrent (or came from the swarm): its spool is not needed."""
        (self.spool_dir / str(index)).unlink(missing_ok=True)
        for part in self.spool_dir.glob(f"{index}.*"):
            part.unlink(missing_ok=True)

    # -- swarm side ---------------------------------------------------------------------------

    def run(self, on_tick: Callable[[IngressStats], None] | None = None) -> None:
        """Ingest every missing piece, then seed until ``stop`` is set.

        Raises PieceMismatch or SourceError if the source cannot deliver a correct piece.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        if not self.settings.stream or torrents.format_of(self.torrent) == "v1":
            # A v1 torrent's SHA-1s are not the manifest's: libtorrent's check of a streamed piece
            # would not be the manifest's check, so every piece is read and checked here first.
            self._read_to_disk(on_tick)
        ses = make_session(self.settings.listen, Caps(upload_rate=self.settings.upload_rate,
                                                      connections=self.settings.connections,
                                                      upload_slots=seedbox_slots(self.settings.upload_slots,
                                                                                 self.stripes)),
                           tracker_alerts=True, ssl=self.identity is not None)
        # Striped: libtorrent would check the disk once per stripe's torrent (common/ondisk.py); once here.
        on_disk = (ondisk.written_after_the_save(self.layout, self._expected, self.data_dir, set())
                   if self.stripes > 1 else None)
        handle = Torrents(ses, self.torrent, self.stripes, str(self.data_dir), self.layout.num_pieces, on_disk)
        if self.identity is not None:
            self.identity.apply(handle.handles)
        try:
            self.stats.state = "checking"
            while handle.checking():
                time.sleep(0.05)
            have = handle.have(self.layout.num_pieces)
            missing = [i for i in range(self.layout.num_pieces) if not have[i]]
            handle.resume()  # checked and looked at: into the swarm
            self.stats.pieces_found_on_disk = self.stats.pieces_done = self.layout.num_pieces - len(missing)
            self.stats.bytes_done = self.manifest.total_size - sum(self.layout.pieces[i].length for i in missing)
            self.stats.state = "ingesting" if missing else "seeding"
            wanted = {str(i) for i in missing}
            for spooled in self.spool_dir.iterdir():  # killed after libtorrent wrote, before the unspool
                if spooled.name.partition(".")[0] not in wanted:
                    spooled.unlink()
            hosts_hold = self.swarm_holds is None or self.swarm_holds()
            if missing and hosts_hold:
                self._wait_for_swarm(ses, handle)
            elif missing:
                log.info("no host holds a piece of %s yet: reading at once", self.manifest.ref)
            if missing:
                self._ingest(ses, handle, missing, hosts_hold, on_tick)
            if not self.stop.is_set():
                shutil.rmtree(self.spool_dir, ignore_errors=True)
            self.stats.state = "seeding"
            while not self.stop.is_set():
                for alert in ses.pop_alerts():
                    log.debug("%s: %s", type(alert).__name__, alert_message(alert))
                self._tick(ses, handle, on_tick)
                self.stop.wait(self.settings.status_interval)
        except Exception as exc:
            self.stats.state, self.stats.error = "failed", str(exc)
            if on_tick:
                on_tick(self.stats)
            raise
        finally:
            handle.remove(ses)
            del ses

    def _read_to_disk(self, on_tick: Callable[[IngressStats], None] | None) -> None:
        """Without streaming: every piece read, verified and written before the swarm sees any
        (pieces already on disk and correct are kept)."""
        self.stats.state = "ingesting"
        with ThreadPoolExecutor(self.settings.fetch_concurrency, thread_name_prefix="fetch") as pool:
            for index, data in zip(range(self.layout.num_pieces),
                                   pool.map(self._keep_or_fetch, range(self.layout.num_pieces)), strict=True):
                span = self.layout.pieces[index]
                path = self.data_dir / self.layout.files[span.file_index].path
                path.parent.mkdir(parents=True, exist_ok=True)
                if data is not None:
                    with open(path, "r+b" if path.exists() else "wb") as f:
                        f.seek(span.file_offset)
                        f.write(data)
                    self._unspool(index)
                    self.stats.bytes_ingested += len(data)
                if on_tick:
                    on_tick(self.stats)

    def _keep_or_fetch(self, index: int) -> bytes | None:
        span = self.layout.pieces[index]
        path = self.data_dir / self.layout.files[span.file_index].path
        try:
            with open(path, "rb") as f:
                f.seek(span.file_offset)
                if piece_root(f.read(span.length), span, self.layout) == self._expected[index]:
                    return None
        except OSError:
            pass
        return self.fetch_checked(index)

    def _wait_for_swarm(self, ses: lt.session, handle: Torrents) -> None:
        """Learn what the swarm holds before choosing what to read first: wait for the tracker's
        answer and, if it names peers, for connections to them (a bitfield comes with each
        handshake); at most ``availability_wait`` seconds. A fresh swarm costs one announce."""
        deadline = time.monotonic() + self.settings.availability_wait
        replies: dict[int, int] = {}
        while time.monotonic() < deadline and not self.stop.is_set():
            for alert in ses.pop_alerts():
                log.debug("%s: %s", type(alert).__name__, alert_message(alert))
                if isinstance(alert, lt.tracker_reply_alert):
                    replies[hash(alert.handle)] = alert.num_peers
            named = handle.peers_named(replies)
            if named == 0:
                return
            # Peers we talk to (status().num_peers also counts connections being attempted).
            if named is not None and handle.peers_connected() >= named:
                time.sleep(0.2)  # the bitfields follow the handshakes
                return
            ses.wait_for_alert(50)
        log.info("starting to read before every peer in the swarm was heard from")

    def _ingest(self, ses: lt.session, handle: Torrents, missing: list[int], hosts_hold: bool,
                on_tick: Callable[[IngressStats], None] | None) -> None:
        """Read the missing pieces into the spool and let libtorrent take each whole one from the
        seedbox's own web seed (``webseed.py``); libtorrent's hash check is the only hash. If hosts
        hold pieces (a restart), what they lack is read first and what they hold last."""
        lanes = self.settings.fetch_concurrency
        demanded: set[int] = set()  # asked of the web seed, not yet read: read next (from its threads)
        # A request waits for its piece as long as the read takes (a slow or capped source: minutes
        # for a 64 MiB piece); the seeder fails if the source does, so nothing waits forever.
        server = SpoolServer(self.spool_files, self.layout, lanes, WEBSEED_HOLD, demanded.add).start()
        # libtorrent drops a web seed that sent nothing for urlseed_timeout (20 s by default): a
        # request waiting for its piece sends nothing until the piece is spooled.
        ses.apply_settings({"max_web_seed_connections": lanes, "urlseed_timeout": int(WEBSEED_HOLD)})
        queue = list(missing)  # not yet asked of the source
        reading: dict[int, list[Future[None]]] = {}  # a piece's parts being read (seedbox/parts.py)
        offered: dict[int, float] = {}  # whole in the spool and wanted from the web seed: since when
        attempts: dict[int, int] = {}  # reads of a piece whose bytes libtorrent rejected
        failing: dict[int, float] = {}  # pieces whose reads the source keeps failing: since when
        retries: dict[int, int] = {}
        rotate_when_ready: set[int] = set()
        done: set[int] = set()
        next_tick = next_look = 0.0
        availability: list[int] = []
        progress = time.monotonic()  # when libtorrent last finished a piece

        # A piece libtorrent has is not yet on disk: libtorrent 2.1 keeps a v2 torrent's pieces in its
        # write cache (seen: none of 20 written after 2 s). Its spool goes once a flush has passed it.
        unflushed: list[int] = []
        flushing: deque[list[Any]] = deque()  # batches behind each flush asked for, oldest first

        def finish(index: int, *, from_swarm: bool = False) -> None:
            offered.pop(index, None)
            server.mark_done(index)
            if index not in reading:  # a read still running writes to the spool: dropped when it ends
                unflushed.append(index)
            if index not in done:
                done.add(index)
                self.stats.pieces_done += 1
                self.stats.bytes_done += self.layout.pieces[index].length
                self.stats.pieces_from_swarm += from_swarm

        def rotate(why: str) -> None:
            old, new = server.rotate()
            log.info("web seed lanes renewed: %s", why)
            handle.url_seeds(old, add=False)
            handle.url_seeds(new, add=True)

        for index in missing:  # a host gave it while the seeder waited to hear from the swarm
            if handle.of(index).have_piece(index):
                queue.remove(index)
                finish(index, from_swarm=True)
        # In a fresh swarm libtorrent asks the web seed in index order, as the reads go (rarest first
        # would ask in random order, each request waiting for its read). Hosts holding pieces: rarest
        # first, so the web seed is asked for what they lack and they give what they hold.
        if not hosts_hold:
            handle.set_flags(lt.torrent_flags.sequential_download, on=True)
        handle.url_seeds(server.urls(), add=True)
        try:
            with ThreadPoolExecutor(lanes, thread_name_prefix="fetch") as pool:
                def read(index: int, attempt: int) -> list[Future[None]]:
                    """The piece's parts, one a lane (queued in order: pieces come whole in order)."""
                    return [pool.submit(self.spool_part, index, b, attempt) for b in self._parts(index)]

                while (queue or reading or offered) and not self.stop.is_set():
                    now = time.monotonic()
                    if hosts_hold and now >= next_look:  # a Python object per peer: not every turn
                        next_look = now + 1.0
                        availability = held_by_hosts(handle.handles, self.layout.num_pieces)
                    # Read ahead of libtorrent by a few pieces; the spool holds no more than that.
                    # Pieces asked for by the web seed first, lowest index first (each stripe's
                    # torrent asks for its own next piece; read all at once they would come whole
                    # together, late), but only as many as keep every lane busy: the rest wait
                    # their turn. One asked for is read even with the spool full (libtorrent may
                    # take nothing else before it: one connection answers in order).
                    room = lanes * 2 - len(reading) - len(offered)
                    asked = sorted(index for index in demanded if index in queue)
                    picked = next_pieces(queue, availability, room) if queue and room > 0 else []
                    for index in asked + [i for i in picked if i not in asked]:
                        if sum(len(parts) for parts in reading.values()) >= lanes * 2 or (
                                index not in asked and len(reading) + len(offered) >= lanes * 2):
                            break
                        demanded.discard(index)
                        queue.remove(index)
                        reading[index] = read(index, attempts.get(index, 0))
                    demanded.intersection_update(queue)
                    for alert in ses.pop_alerts():
                        log.debug("%s: %s", type(alert).__name__, alert_message(alert))
                        if self._flush_done(alert, flushing):
                            pass
                        elif isinstance(alert, lt.piece_finished_alert):
                            index = alert.piece_index
                            progress = now
                            if index in offered or index in reading:
                                finish(index)  # its bytes crossed the ingress, even if a host was quicker
                            elif index in queue:  # a restarted seedbox downloads what hosts hold: one read saved
                                queue.remove(index)
                                finish(index, from_swarm=True)
                        elif isinstance(alert, lt.hash_failed_alert) and alert.piece_index in offered:
                            # The source's bytes are not the signed ones: read the piece again.
                            index = alert.piece_index
                            del offered[index]
                            server.unready(index)
                            data = self.spooled_bytes(index)
                            self.stats.bytes_ingested -= len(data)
                            attempt = attempts.get(index, 0)
                            self._wrong_bytes(index, data, attempt)  # raises once the retries are used
                            attempts[index] = attempt + 1
                            rotate_when_ready.add(index)  # libtorrent stops asking a lane that sent them
                            reading[index] = read(index, attempt + 1)
                    for index, futures in list(reading.items()):
                        if not all(future.done() for future in futures):
                            continue
                        del reading[index]
                        failed = next((e for e in (f.exception() for f in futures) if e is not None), None)
                        if failed is not None:
                            # Each read had its retries; the piece is asked again, with a longer
                            # backoff each time, until the source has failed it for source_patience
                            # seconds: a source down for a minute must not end a day's ingest.
                            since = failing.setdefault(index, now)
                            if not isinstance(failed, SourceError) or now - since > self.settings.source_patience:
                                raise failed
                            retries[index] = retries.get(index, 0) + 1
                            log.warning("reading piece %d failed (%s); asking again (for %.0f s so far)",
                                        index, failed, now - since)
                            reading[index] = read(index, retries[index])
                            continue
                        failing.pop(index, None)
                        self.stats.bytes_ingested += self.layout.pieces[index].length
                        if index in done:  # a host gave it to libtorrent while it was being read
                            unflushed.append(index)
                            continue
                        server.mark_ready(index)
                        offered[index] = now
                        if index in rotate_when_ready:
                            rotate_when_ready.discard(index)
                            rotate(f"piece {index} read again after bad bytes")
                    # A piece waiting in the spool that long while none was taken: the lanes are stuck.
                    if offered and now - max(progress, min(offered.values())) > self.settings.stall_timeout:
                        progress = now
                        rotate(f"no piece taken from the web seed for {self.settings.stall_timeout:.0f}s "
                               f"({len(offered)} waiting)")
                    if now >= next_tick:
                        self._tick(ses, handle, on_tick)
                        next_tick = now + self.settings.status_interval
                        self._ask_flush(handle, unflushed, flushing)
                    ses.wait_for_alert(20)
                self._flush(ses, handle, unflushed, flushing)
        finally:
            handle.set_flags(lt.torrent_flags.sequential_download, on=False)
            handle.url_seeds(server.urls(), add=False)
            server.close()
        self.stats.bytes_via_webseed = server.bytes_served

    @staticmethod
    def _ask_flush(handle: Torrents, unflushed: list[int], flushing: deque[list[Any]]) -> None:
        """Ask libtorrent to flush the pieces finished since the last flush asked for, if any."""
        if unflushed:
            pieces = unflushed[:]
            unflushed.clear()
            flushing.append([pieces, handle.flush()])  # the pieces, the answers still to come

    def _flush_done(self, alert: lt.alert, flushing: deque[list[Any]]) -> bool:
        """If ``alert`` answers the oldest flush asked for: drop the spools behind it once every
        torrent (stripe) has answered. Whether it was such an answer.
        (``flush_cache``, not ``save_resume_data(flush_disk_cache)``: that also builds resume data
        holding every block's hash, 2 MiB per GiB, each second; seen as the seedbox's memory growing
        with the model, 415 MiB at 4 GiB and 700 at 32.)"""
        if not (isinstance(alert, lt.cache_flushed_alert) and flushing):
            return False
        flushing[0][1] -= 1
        if flushing[0][1] <= 0:
            for index in flushing.popleft()[0]:
                self._unspool(index)
        return True

    def _flush(self, ses: lt.session, handle: Torrents, unflushed: list[int],
               flushing: deque[list[Any]]) -> None:
        """Flush libtorrent's write cache and drop the spools behind it (before the spool folder goes)."""
        self._ask_flush(handle, unflushed, flushing)
        deadline = time.monotonic() + 60
        while flushing and time.monotonic() < deadline:
            ses.wait_for_alert(100)
            for alert in ses.pop_alerts():
                self._flush_done(alert, flushing)
        if flushing:
            raise SourceError("libtorrent did not flush its write cache in 60 s",
                              hint="check the seedbox's disk; the spooled pieces are kept")

    def _tick(self, ses: lt.session, handle: Torrents,
              on_tick: Callable[[IngressStats], None] | None) -> None:
        if self.identity is not None:
            self.identity.refresh(handle.handles)  # past half its life: renewed, for the next connections
            if (revoked := self.identity.revoked()) is not None and (new := self.bans.revoke(ses, revoked)):
                log.warning("refusing peers at %s: their hosts were revoked", ", ".join(sorted(new)))
        statuses = [h.status() for h in handle.handles]
        self.stats.peers = sum(st.num_peers for st in statuses)
        self.stats.uploaded = sum(st.total_payload_upload for st in statuses)
        if on_tick:
            on_tick(self.stats)
