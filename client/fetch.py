"""The client's libtorrent adapter: download one model version, verify it, activate it.

Before anything is downloaded, the torrent's v2 hashes are checked to be the signed manifest's
piece roots (``common.torrent.check_matches``). libtorrent checks every 16 KiB block against them
as it arrives and finishes a piece only when all of its blocks are right, so a finished piece is a
piece verified against the signed manifest: each byte is hashed once on the host, and never read
back. Pieces libtorrent finds on disk after a restart are hashed by its recheck the same way.

The state kept across a restart is the set of verified pieces, saved only once libtorrent's write
cache has been flushed past them (periodically and before activation). A restart in the same boot
hands them to libtorrent as had, without hashing them again, with the pieces written after the
last save (``common/ondisk.py``: found by where the files hold data, then hashed). libtorrent's own resume data is not
kept: for a v2 torrent it carries every 16 KiB block's hash (32 bytes a block, 2 MiB per GiB:
measured 8.5 MB for 4 GiB, which would be about 1 GB for a 500 GB model, rewritten every few
seconds), and for an unfinished torrent it marks no piece as had anyway.
"""

from __future__ import annotations

import logging
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import libtorrent as lt

from client import priority, reuse
from client.hooks import run_on_activate
from client.reuse import Donor
from client.settings import ClientSettings
from client.store import ModelStore
from common import ondisk
from common import torrent as torrents
from common.errors import DiskSpaceError, ModeltorrentError, PieceMismatch, SignatureError, TorrentMismatch
from common.layout import Layout
from common.lt_session import BAN_HOURS, STRIKE_WINDOW, Bans, add_params, alert_message, make_session
from common.manifest import Manifest
from common.peer_identity import PeerIdentity
from tracker.api_client import TrackerClient, patiently

log = logging.getLogger("modeltorrent.client")
_rng = random.Random()  # retry jitter: spread, not secrecy
T = TypeVar("T")


@dataclass
class Progress:
    name: str
    version: str
    state: str
    num_pieces: int
    total_size: int
    pieces_verified: int = 0
    bytes_done: int = 0
    bytes_downloaded: int = 0  # payload downloaded in this run
    download_rate: float = 0.0
    peers: int = 0
    hash_failures: int = 0
    bytes_reused: int = 0  # copied from another version on this host instead of downloaded
    low_priority: bool = False
    uploaded: int = 0  # payload uploaded in this run
    upload_rate: float = 0.0
    error: str = ""


@dataclass(frozen=True)
class FetchResult:
    name: str
    version: str
    activated: bool
    already_active: bool
    bytes_downloaded: int
    pieces_verified_at_start: int
    hash_failures: int
    elapsed: float
    last_piece_to_active: float
    hook_error: str | None = None  # the on-activate hook failed (the version is active regardless)
    pieces_reused: int = 0  # copied from another version on this host
    download_seconds: float = 0.0  # from the start to the last piece verified
    peers_max: int = 0  # the most peers connected at once (seen at status intervals)


class Fetcher:
    def __init__(self, settings: ClientSettings, api: TrackerClient,
                 on_progress: Callable[[Progress], None] | None = None) -> None:
        self.settings = settings
        self.api = api
        self.store = ModelStore(settings.root)
        self.on_progress = on_progress
        self.stop = threading.Event()
        self._identity: PeerIdentity | None = None

    def _ask(self, call: Callable[[], T]) -> T:
        return patiently(call, self.settings.tracker_wait, self.stop)

    def identity(self, torrent: bytes) -> PeerIdentity | None:
        """This host's peer certificate for an SSL torrent (``common/peer_certs.py``), else None."""
        if torrents.peer_ca(torrent) is None:
            return None
        if self._identity is None:
            self._identity = PeerIdentity(self.settings.root / "peer", self.api.peer_certificate,
                                          self.api.peer_revocations)
        return self._identity

    def fetch(self, name: str, version: str, *, seed_for: float = 0.0,
              keep_seeding: Callable[[], bool] | None = None) -> FetchResult:
        """Download, verify and activate ``name@version``; then seed for ``seed_for`` seconds
        (``float('inf')``: until stopped), or while ``keep_seeding()`` is true if it is given.

        Raises SignatureError, TorrentMismatch, DiskSpaceError, ApiError, or
        ModeltorrentError for a storage or stop condition. The active model is never touched
        unless every piece is verified.
        """
        started = time.monotonic()
        version_dir = self.store.version_dir(name, version)
        if self.store.active_version(name) == version and version_dir.is_dir():
            return FetchResult(name, version, True, True, 0, 0, 0, 0.0, 0.0)
        if not self.settings.trusted_keys:
            raise SignatureError("no trusted publisher keys are configured",
                                 hint="pass --trust-key with the publisher's .pub key")
        manifest = self._ask(lambda: self.api.manifest(name, version))
        layout = manifest.verify(self.settings.trusted_keys)
        torrent = self._ask(lambda: self.api.torrent(name, version))
        torrents.check_matches(torrent, manifest)  # the stripes are derived from it (same files and hashes)
        stripes = int(self._ask(lambda: self.api.release(name, version)).get("stripes", 1))

        save_path = version_dir if version_dir.is_dir() else self.store.staging(name, version)
        verified = ondisk.still_there(self.store.load_verified(name, version), layout, save_path)
        if verified:  # a restart in this boot: what was written after the last save is there too
            verified |= ondisk.written_after_the_save(layout, manifest.piece_digests(), save_path, verified)
        elif stripes > 1 and save_path.is_dir():
            # Nothing saved (another boot): libtorrent would check the disk once per stripe's
            # torrent, every piece each time (measured: 4 stripes of 512 MiB, 5.1 CPU-s against
            # 1.4 for one torrent); checked once here instead, against the manifest.
            verified = ondisk.written_after_the_save(layout, manifest.piece_digests(), save_path, set())
        self._preflight(manifest, save_path)
        save_path.mkdir(parents=True, exist_ok=True)
        self.store.save_manifest(name, version, manifest.to_json())  # for later versions to reuse pieces
        reused: set[int] = set()
        if not verified and self.settings.reuse_pieces:
            reused = self._reuse(manifest, layout, save_path)
        run = _Run(self, manifest, layout, torrent, save_path, verified | reused, reused, stripes)
        try:
            last_piece_at = run.download()
            if torrents.format_of(torrent) == "v1":
                run.flush()  # read back from the files: libtorrent may hold the last pieces in its write cache
                self._verify_v1(manifest, save_path)
            run.activate(version_dir)
            activated_at = time.monotonic()
            hook_error = run_on_activate(self.settings.on_activate, name, version, self.store.current(name),
                                         self.settings.on_activate_timeout)
            if hook_error is not None:  # the version is active; the tracker and the page say the hook failed
                run.progress.error = f"on-activate hook failed: {hook_error}"
                run.report()
            removed = self.store.prune(name, self.settings.keep_versions)
            if removed:
                log.info("pruned old versions: %s", ", ".join(removed))
            run.seed(seed_for, keep_seeding)
        finally:
            run.close()
        return FetchResult(
            name, version, True, False, run.downloaded, run.verified_at_start, run.hash_failures,
            time.monotonic() - started, activated_at - last_piece_at, hook_error, len(reused),
            last_piece_at - started, run.peers_max,
        )

    def _verify_v1(self, manifest: Manifest, save_path: Path) -> None:
        """A v1 torrent's SHA-1s are not signed: check the whole download against the manifest's
        piece roots before it is activated (one more read and hash of every byte: what v1 costs).
        Raises TorrentMismatch, with the download discarded, if a piece is not the publisher's."""
        log.info("%s: a v1 torrent: checking every piece against the signed manifest", manifest.ref)
        try:
            manifest.verify_data(save_path)
        except PieceMismatch as exc:
            self.store.save_verified(manifest.name, manifest.version, set())
            shutil.rmtree(save_path, ignore_errors=True)
            raise TorrentMismatch(
                f"{manifest.ref}: the torrent's SHA-1 hashes let through bytes that are not the signed "
                f"manifest's ({exc.message})",
                hint="the tracker serves a torrent the publisher did not make: publish it again; "
                "nothing was activated and the download was discarded") from exc

    def _reuse(self, manifest: Manifest, layout: Layout, save_path: Path) -> set[int]:
        """Copy the pieces other versions on this host share with this one (verified as copied)."""
        donors = []
        for other in self.store.versions(manifest.name):
            if other == manifest.version:
                continue
            raw = self.store.load_manifest(manifest.name, other)
            try:  # a donor's manifest only says where to look: copied bytes are checked against ours
                theirs = Manifest.from_json(raw) if raw else self.api.manifest(manifest.name, other)
                if theirs.format != manifest.format:  # other digests: nothing would match
                    continue
                donors.append(Donor(self.store.version_dir(manifest.name, other), theirs.layout(),
                                    theirs.piece_digests()))
            except ModeltorrentError as exc:
                log.info("not reusing pieces of %s@%s: %s", manifest.name, other, exc)
        sources = reuse.plan(layout, manifest.piece_digests(), donors)
        if not sources:
            return set()
        log.info("%s: copying %d of %d pieces from other versions on this host", manifest.ref, len(sources),
                 layout.num_pieces)
        copied = reuse.copy(sources, layout, manifest.piece_digests(), save_path, should_stop=self.stop.is_set)
        log.info("%s: reused %d pieces (%d bytes)", manifest.ref, len(copied),
                 sum(layout.pieces[i].length for i in copied))
        return copied

    def _preflight(self, manifest: Manifest, save_path: Path) -> None:
        present = sum((save_path / f.path).stat().st_size for f in manifest.files
                      if (save_path / f.path).is_file())
        probe = save_path
        while not probe.exists():
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        need = manifest.total_size - present + self.settings.disk_reserve
        if free < need:
            raise DiskSpaceError(
                f"not enough disk space for {manifest.ref} under {self.settings.root}: "
                f"need {need} bytes, {free} free",
                hint="free some space or lower keep_versions; the active model was not touched",
            )


class _Run:
    """One download of one version: one torrent, or one per stripe of a striped version
    (``common/torrent.py``) in one libtorrent session or spread over ``settings.sessions``. A
    stripe's torrent wants only its own pieces and all of them save into the same folder; the
    version is verified when every stripe is."""

    def __init__(self, fetcher: Fetcher, manifest: Manifest, layout: Layout, torrent: bytes,
                 save_path: Path, verified: set[int], reused: set[int], stripes: int = 1) -> None:
        self.f = fetcher
        self.manifest = manifest
        self.layout = layout
        s = fetcher.settings
        self.low_priority = self._low_priority()
        self.save_path = save_path
        self.stripes = stripes
        n = min(s.sessions, stripes)
        self.identity = fetcher.identity(torrent)  # an SSL torrent: peers must show a certificate
        self.sessions = [make_session(priority.listen_of(s.listen, k), priority.share(
            priority.caps(s, self.low_priority), n), ssl=self.identity is not None) for k in range(n)]
        self.torrents = [torrent] if stripes == 1 else \
            [torrents.stripe_torrent(torrent, k, stripes) for k in range(stripes)]
        self.verified = {i for i in verified if 0 <= i < layout.num_pieces}
        self._flushes_pending = 0
        self.handles = self._add_all()
        self.verified_at_start = len(self.verified)
        self.reused_bytes = sum(layout.pieces[i].length for i in reused)
        self.peers_max = 0
        self._flushed: set[int] = set()
        self.checked = False
        self.hash_failures = 0
        self.bans = Bans(path=s.root / "banned.json")  # kept across restarts
        if again := self.bans.restore(self.sessions):
            log.warning("still refusing %s: banned within the last %.0f h", ", ".join(sorted(again)), BAN_HOURS)
        self.fresh_starts = 0  # the torrent taken out and added again after a ban (below)
        self._start_afresh = False
        self.downloaded = 0
        self.progress = Progress(manifest.name, manifest.version, "starting", layout.num_pieces,
                                 manifest.total_size)
        self._next_status = 0.0
        self._next_resume = time.monotonic() + s.resume_interval

    # -- the alert loop -----------------------------------------------------------------------

    def download(self) -> float:
        """Run until every piece is verified; return the monotonic time of the last one."""
        while not (self.checked and len(self.verified) == self.layout.num_pieces):
            self._check_stop()
            self._wait(100)
            self._handle_alerts()
            if self._start_afresh:
                self._start_afresh = False
                self._without_partial_pieces()
            self._after_check()
            self._periodic()
        self.progress.state = "verified"
        return time.monotonic()

    def flush(self) -> None:
        """Every piece verified so far written to the files (a v1 download is read back before it is
        activated; seen in CI: a small file not yet created when the read began)."""
        self._flush_and_wait()

    def _session_of(self, stripe: int) -> lt.session:
        return self.sessions[stripe % len(self.sessions)]

    def _wait(self, ms: int) -> None:
        """Until an alert comes, at most ``ms``; with several sessions, a short wait on the first
        (the others' alerts are popped at the next turn)."""
        self.sessions[0].wait_for_alert(ms if len(self.sessions) == 1 else min(ms, 20))

    def _alerts(self) -> list[lt.alert]:
        return [alert for ses in self.sessions for alert in ses.pop_alerts()]

    def _handle_alerts(self) -> None:
        for alert in self._alerts():
            log.debug("%s: %s", type(alert).__name__, alert_message(alert))
            if isinstance(alert, lt.piece_finished_alert):
                self.verified.add(alert.piece_index)  # every block checked against the manifest's root
            elif isinstance(alert, lt.hash_failed_alert):
                self.hash_failures += 1
                log.warning("piece %d failed its torrent hash; libtorrent fetches it again",
                            alert.piece_index)
            elif isinstance(alert, lt.peer_ban_alert):
                address = alert.endpoint[0]
                verdict = self.bans.strike(self.sessions, address)
                if verdict == "blocked":
                    log.warning("peer %s sent data that failed the hash check again: banned, its address blocked",
                                address)
                elif verdict == "struck":  # libtorrent's sole-sender rule can blame an honest peer (STRIKES)
                    log.warning("peer %s was found the sole sender of a piece that failed its hash: "
                                "disconnected, and blocked if it happens again within %.0f min",
                                address, STRIKE_WINDOW / 60)
                else:
                    log.warning("%s", alert_message(alert))
                if verdict != "ignored":
                    self._start_afresh = True  # libtorrent's ban and trust points go with the torrent
            elif isinstance(alert, lt.cache_flushed_alert):
                self._persist()
            elif isinstance(alert, (lt.file_error_alert, lt.torrent_error_alert)):
                raise ModeltorrentError(
                    f"storage error for {self.manifest.ref}: {alert_message(alert)}",
                    hint="check free space and permissions under the client root",
                )

    def _add_all(self, seeding: bool = False) -> list[lt.torrent_handle]:
        handles = [self._session_of(k).add_torrent(self._params(k, seeding)) for k in range(self.stripes)]
        if self.identity is not None:
            self.identity.apply(handles)
        return handles

    def _remove_all(self) -> None:
        for k, handle in enumerate(self.handles):
            self._session_of(k).remove_torrent(handle)
        self._wait_for(lt.torrent_removed_alert, count=len(self.handles))

    def _without_partial_pieces(self) -> None:
        """After a ban: take the torrent out and add it again with its verified pieces and without
        its partial ones. Those may hold the banned peer's blocks, and libtorrent would charge each honest peer
        that completes one with the failure (two trust points; banned at -7: seen in the lab). Adding
        it again also clears the trust points it took so far. The banned address stays blocked in
        the session. Costs the partial pieces' blocks and a reconnect."""
        self._flush_and_wait()  # the verified pieces' blocks to disk first
        self.verified = set(self._flushed)
        self._remove_all()
        self.handles = self._add_all()
        self.checked = False  # _after_check looks at what it has again, once it is checked
        self.fresh_starts += 1
        log.warning("%s added again without its partial pieces, after a ban", self.manifest.ref)

    def _params(self, stripe: int = 0, seeding: bool = False) -> lt.add_torrent_params:
        """The torrent (of ``stripe``) with the pieces verified so far (saved in this boot, or
        copied and checked just now) taken as had, without hashing them again; without any,
        libtorrent checks the disk. A stripe's torrent has every verified piece, of any stripe, but
        wants only its own. ``seeding``: the version is complete and active, every piece had."""
        params = add_params(self.torrents[stripe], str(self.save_path))
        if seeding:
            params.have_pieces = [True] * self.layout.num_pieces
        elif self.verified:
            params.have_pieces = [i in self.verified for i in range(self.layout.num_pieces)]
        if self.stripes > 1 and not seeding:
            params.piece_priorities = torrents.stripe_priorities(self.layout.num_pieces, stripe, self.stripes)
        return params

    def _statuses(self) -> list[lt.torrent_status]:
        return [h.status() for h in self.handles]

    def _after_check(self) -> None:
        """Once libtorrent has checked what is on disk (pieces saved as verified in this boot, or a
        recheck that hashed every piece), the pieces it has are the verified ones."""
        if self.checked:
            return
        statuses = self._statuses()
        if any(s.state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
               for s in statuses):
            return
        self.checked = True
        self.verified = {i for s in statuses if s.pieces for i in range(self.layout.num_pieces) if s.pieces[i]}

    def _low_priority(self) -> bool:
        return self.f.settings.low_priority or (self.f.settings.root / priority.MARKER).exists()

    def _periodic(self, force: bool = False) -> None:
        now = time.monotonic()
        if self.identity is not None:
            self.identity.refresh(self.handles)  # past half its life: renewed, for the next connections
            if (revoked := self.identity.revoked()) is not None and (new := self.bans.revoke(self.sessions, revoked)):
                log.warning("refusing peers at %s: their hosts were revoked", ", ".join(sorted(new)))
        if force or now >= self._next_status:
            low = self._low_priority()
            if low != self.low_priority:
                self.low_priority = low
                caps = priority.caps(self.f.settings, low)
                for ses in self.sessions:
                    ses.apply_settings(priority.share(caps, len(self.sessions)).pack())  # type: ignore[arg-type]
                log.info("%s priority: upload cap %d B/s, download cap %d B/s, DSCP %d",
                         "low" if low else "normal", caps.upload_rate, caps.download_rate, caps.dscp)
        if now >= self._next_resume and self._flushes_pending <= 0:  # not while the last one runs: see _persist
            self._flush()
            self._next_resume = now + self.f.settings.resume_interval
        if force or now >= self._next_status:
            statuses = self._statuses()
            p = self.progress
            if p.state in ("starting", "checking", "downloading"):
                checking = any(s.state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
                               for s in statuses)
                p.state = "checking" if checking else "downloading"
            p.pieces_verified = len(self.verified)
            p.bytes_done = sum(self.layout.pieces[i].length for i in self.verified)
            # A stripe's counters start again when it is added again (at activation): what was
            # downloaded before stays counted.
            downloaded = sum(s.total_payload_download for s in statuses)
            self.downloaded = p.bytes_downloaded = max(self.downloaded, downloaded)
            p.download_rate = float(sum(s.download_payload_rate for s in statuses))
            p.peers = sum(s.num_peers for s in statuses)  # connections: a peer in two stripes counts twice
            self.peers_max = max(self.peers_max, p.peers)
            p.hash_failures = self.hash_failures
            p.bytes_reused = self.reused_bytes
            p.low_priority = self.low_priority
            p.uploaded = sum(s.total_payload_upload for s in statuses)
            p.upload_rate = float(sum(s.upload_payload_rate for s in statuses))
            self.report()
            self._next_status = now + self.f.settings.status_interval

    def report(self) -> None:
        if self.f.on_progress:
            self.f.on_progress(self.progress)

    def _flush(self) -> None:
        """Have libtorrent flush its write cache (``cache_flushed_alert`` says it is done):
        libtorrent 2.1 keeps the blocks of a v2 torrent's finished pieces in memory (seen: none on
        disk 3 s into a download), and a process killed then would lose them. Not through
        ``save_resume_data(flush_disk_cache)``: that also builds resume data holding every block's
        hash (2 MiB per GiB), thrown away here."""
        self._flushed = set(self.verified)  # finished before the flush: on disk once it is done
        self._flushes_pending = len(self.handles)
        for handle in self.handles:
            handle.flush_cache()

    def _flush_and_wait(self, timeout: float = 60.0) -> None:
        """Flush every stripe and wait until all are done (and the pieces saved)."""
        if self._flushes_pending > 0:  # one asked for earlier: its answers first
            self._wait_for(lt.cache_flushed_alert, timeout, count=self._flushes_pending)
        self._flush()
        self._wait_for(lt.cache_flushed_alert, timeout, count=self._flushes_pending)

    def _persist(self) -> None:
        """A flush asked for is done (every stripe's, of a striped version): the pieces finished
        before it are on disk."""
        self._flushes_pending -= 1
        if self._flushes_pending <= 0:
            self.f.store.save_verified(self.manifest.name, self.manifest.version, set(self._flushed))

    def _wait_for(self, kind: type, timeout: float = 60.0, count: int = 1) -> None:
        """Until ``count`` alerts of ``kind`` have come (one per stripe, say); the flushes that end
        meanwhile are saved."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            self._wait(100)
            for alert in self._alerts():  # the whole batch: a second stripe's answer may be in it
                if isinstance(alert, lt.cache_flushed_alert):
                    self._persist()
                if isinstance(alert, kind):
                    seen += 1
                if isinstance(alert, (lt.storage_moved_failed_alert, lt.file_error_alert)):
                    raise ModeltorrentError(f"storage error: {alert_message(alert)}")
            if seen >= count:
                return
        raise ModeltorrentError(f"libtorrent did not answer in {timeout:.0f}s ({kind.__name__})")

    def _check_stop(self) -> None:
        if self.f.stop.is_set():
            raise ModeltorrentError(f"stopped before {self.manifest.ref} was complete",
                                    hint="run the same command again to resume")

    # -- after the last piece -------------------------------------------------------------------

    def activate(self, version_dir: Path) -> None:
        """Move the verified files into ``versions/<v>`` and swap ``current`` to them."""
        self.progress.state = "activating"
        steps = [("start", time.monotonic())]
        self._flush_and_wait()  # every block on disk before the files become the active model
        steps.append(("flush", time.monotonic()))
        if self.stripes > 1:
            self._move_stripes(version_dir)
            steps.append(("move", time.monotonic()))
        elif Path(self.handles[0].status().save_path) != version_dir:
            version_dir.parent.mkdir(parents=True, exist_ok=True)
            self.handles[0].move_storage(str(version_dir), lt.move_flags_t.fail_if_exist)
            self._wait_for(lt.storage_moved_alert)
            steps.append(("move", time.monotonic()))
            shutil.rmtree(self.f.store.staging(self.manifest.name, self.manifest.version),
                          ignore_errors=True)
        self.f.store.activate(self.manifest.name, self.manifest.version)
        steps.append(("swap", time.monotonic()))
        self.progress.state = "activated"
        self._periodic(force=True)
        log.info("activated %s (%s); %d of %d pieces were verified at the start of this run", self.manifest.ref,
                 ", ".join(f"{name} {(t - steps[i][1]) * 1000:.1f} ms" for i, (name, t) in enumerate(steps[1:])),
                 self.verified_at_start, self.layout.num_pieces)

    def _move_stripes(self, version_dir: Path) -> None:
        """A striped version's files are every stripe's: the stripes leave the session, the folder
        is renamed (one filesystem: the store's root), and they come back as seeds of every piece,
        without hashing anything again (a seed in every stripe's swarm, as the tracker counts it)."""
        self.downloaded = max(self.downloaded, sum(s.total_payload_download for s in self._statuses()))
        self._remove_all()
        if self.save_path != version_dir:
            version_dir.parent.mkdir(parents=True, exist_ok=True)
            self.save_path.rename(version_dir)
            self.save_path = version_dir
        self.handles = self._add_all(seeding=True)

    def seed(self, seconds: float, keep_seeding: Callable[[], bool] | None = None) -> None:
        deadline = time.monotonic() + seconds
        more = keep_seeding or (lambda: time.monotonic() < deadline)
        if more():
            self.progress.state = "seeding"
        while more() and not self.f.stop.is_set():
            self._wait(500)
            for alert in self._alerts():
                if isinstance(alert, lt.cache_flushed_alert):
                    self._persist()
            self._periodic()

    def close(self) -> None:
        """Flush and save the verified pieces (best effort), and leave the swarm."""
        try:
            if all(h.is_valid() for h in self.handles):
                self._flush_and_wait(timeout=10)
        except ModeltorrentError as exc:
            log.warning("could not save the verified pieces: %s", exc)
        for k, handle in enumerate(self.handles):
            self._session_of(k).remove_torrent(handle)
