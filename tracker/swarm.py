"""Announce and scrape against the peer store in the database."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from sqlalchemy import case, delete, func, or_, text
from sqlmodel import Session, col, select

from tracker.models import Completion, Host, Peer, Release
from tracker.peers import Asker, Candidate, Location, Policy, select_peers
from tracker.peerstore import PeerRow, PeerStore
from tracker.protocol import (
    AnnounceRequest,
    PeerAddress,
    ScrapeEntry,
    TrackerError,
    announce_response,
)
from tracker.settings import TrackerSettings


def swarm_counts(session: Session, release_id: int | None, horizon: float) -> tuple[int, int]:
    """(seeders, leechers) among the peers of a release heard from since ``horizon``."""
    seeders, total = session.exec(
        select(func.coalesce(func.sum(case((col(Peer.left) == 0, 1), else_=0)), 0), func.count())
        .where(col(Peer.release_id) == release_id, col(Peer.last_seen) >= horizon)
    ).one()
    return int(seeders), int(total) - int(seeders)


class Directory:
    """In-process caches of what an announce needs and what rarely changes: hosts and releases.

    Hosts are reloaded every ``ttl`` seconds (and on an unknown passkey, at most once a second),
    so a registration or a revocation made through another worker is seen within ``ttl``; one
    made through this worker is seen at once (``invalidate``). Releases never change once
    registered; an unknown info hash reloads them, at most once a second.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._hosts_at = -1e9
        self._releases_at = -1e9
        self.by_passkey: dict[str, HostInfo] = {}
        self.by_id: dict[int, HostInfo] = {}
        self.releases: dict[str, ReleaseInfo] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._hosts_at = self._releases_at = -1e9

    def host(self, session: Session, passkey: str, now: float) -> HostInfo | None:
        if now - self._hosts_at > self.ttl or (passkey not in self.by_passkey and now - self._hosts_at > 1.0):
            self._load_hosts(session, now)
        return self.by_passkey.get(passkey)

    def hosts_by_id(self, session: Session, now: float) -> dict[int, HostInfo]:
        if now - self._hosts_at > self.ttl:
            self._load_hosts(session, now)
        return self.by_id

    def release(self, session: Session, info_hash: bytes, now: float) -> ReleaseInfo | None:
        key = info_hash.hex()
        if key not in self.releases and now - self._releases_at > 1.0:
            rows = session.connection().execute(
                text("SELECT id, info_hash_v1, info_hash_v2, total_size FROM release")
            ).all()
            releases = {}
            for rid, v1, v2, total in rows:
                info = ReleaseInfo(rid, total)
                releases[v1] = releases[v2] = info
            with self._lock:
                self.releases, self._releases_at = releases, now
        return self.releases.get(key)

    def _load_hosts(self, session: Session, now: float) -> None:
        rows = session.connection().execute(text("SELECT id, passkey, location, role, revoked FROM host")).all()
        by_passkey, by_id = {}, {}
        for hid, passkey, location, role, revoked in rows:
            info = HostInfo(hid, Location.parse(location), role == "seedbox", bool(revoked))
            by_passkey[passkey] = info
            by_id[hid] = info
        with self._lock:
            self.by_passkey, self.by_id, self._hosts_at = by_passkey, by_id, now


@dataclass(frozen=True)
class HostInfo:
    id: int
    location: Location
    seedbox: bool
    revoked: bool


@dataclass(frozen=True)
class ReleaseInfo:
    id: int
    total_size: int


def authenticate(session: Session, passkey: str) -> Host:
    """Raises TrackerError for an unknown or revoked passkey."""
    host = session.exec(select(Host).where(Host.passkey == passkey)).first()
    if host is None:
        raise TrackerError(UNKNOWN_PASSKEY)
    if host.revoked:
        raise TrackerError(REVOKED)
    return host


UNKNOWN_PASSKEY = "unknown passkey: register this host with `modeltorrent hosts add`"
REVOKED = "this host's passkey was revoked"


def find_release(session: Session, info_hash: bytes) -> Release | None:
    h = info_hash.hex()
    return session.exec(
        select(Release).where(or_(col(Release.info_hash_v1) == h, col(Release.info_hash_v2) == h))
    ).first()


def announce(
    session: Session,
    settings: TrackerSettings,
    directory: Directory,
    store: PeerStore,
    req: AnnounceRequest,
    ip: str,
    now: float,
    rng: random.Random,
) -> bytes:
    """Record the announce and answer it. Raises TrackerError if it is refused.

    The hot path touches no database in the common case: hosts and releases come from the
    directory's cache, the swarm from this worker's peer store, which writes behind.
    """
    host = directory.host(session, req.passkey, now)
    if host is None:
        raise TrackerError(UNKNOWN_PASSKEY)
    if host.revoked:
        raise TrackerError(REVOKED)
    release = directory.release(session, req.info_hash, now)
    if release is None:
        raise TrackerError("unregistered torrent")
    peer_id = req.peer_id.hex()
    row = None if req.event == "stopped" else PeerRow(peer_id, ip, req.port, req.left, now, host.id, now,
                                                       req.uploaded, req.downloaded)
    first_seen = store.record(release.id, row, peer_id, completed=req.event == "completed", now=now)
    horizon = now - settings.interval * settings.peer_ttl_factor
    hosts = directory.hosts_by_id(session, now)
    unknown = HostInfo(-1, Location(), False, False)
    candidates = []
    for peer in store.live(release.id, now, horizon):
        if peer.peer_id == peer_id:
            continue
        info = hosts.get(peer.host_id, unknown)
        candidates.append(Candidate((peer.peer_id, peer.ip, peer.port), info.location,
                                    has_pieces=peer.left < release.total_size, seed=peer.left == 0,
                                    seedbox=info.seedbox, first_seen=peer.first_seen))
    complete = sum(1 for c in candidates if c.seed)
    numwant = min(req.numwant if req.numwant is not None else settings.numwant_default, settings.numwant_max)
    asker = Asker(host.location, first_seen, seed=req.left == 0, seedbox=host.seedbox)
    policy = Policy(remote_share=settings.remote_share, seedbox_per_rack=settings.seedbox_per_rack)
    chosen = select_peers(asker, candidates, 0 if req.event == "stopped" else numwant, rng, policy)
    # Jitter spreads re-announces out, so a fleet started together does not stay in lockstep.
    min_interval = min(settings.min_interval, settings.interval)
    interval = round(settings.interval * (1 + rng.uniform(-1, 1) * settings.interval_jitter))
    return announce_response(
        interval=max(interval, min_interval),
        min_interval=min_interval,
        complete=complete,
        incomplete=len(candidates) - complete,
        peers=[PeerAddress(pip, pport, bytes.fromhex(pid)) for pid, pip, pport in chosen],
        compact_form=req.compact,
    )


def expire_peers(session: Session, settings: TrackerSettings, now: float) -> int:
    """Drop peers not heard from in ``peer_ttl_factor`` intervals (run by the reconcile loop)."""
    horizon = now - settings.interval * settings.peer_ttl_factor
    result = session.connection().execute(delete(Peer).where(col(Peer.last_seen) < horizon))
    session.commit()
    return int(result.rowcount or 0)


def scrape(
    session: Session, settings: TrackerSettings, passkey: str, hashes: list[bytes], now: float
) -> list[ScrapeEntry]:
    """Swarm counts for registered torrents only; strangers are refused by authenticate."""
    authenticate(session, passkey)
    horizon = now - settings.interval * settings.peer_ttl_factor
    wanted = hashes or [bytes.fromhex(r.info_hash_v1) for r in session.exec(select(Release)).all()]
    entries = []
    for info_hash in wanted[:100]:
        release = find_release(session, info_hash)
        if release is None:
            continue
        seeders, leechers = swarm_counts(session, release.id, horizon)
        done = session.get(Completion, release.id)
        entries.append(ScrapeEntry(info_hash, seeders, leechers, done.count if done else 0))
    return entries
