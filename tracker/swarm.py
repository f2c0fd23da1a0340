"""Announce and scrape against the peer store in the database."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, func, or_, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from common.ratelimit import TokenBucket
from tracker.lifetime import holds_pieces, is_ours
from tracker.models import Completion, Host, Peer, Release, published
from tracker.peers import Asker, Candidate, Location, Policy, Stripe, SwarmIndex
from tracker.peerstore import Announced, PeerStore, View
from tracker.protocol import (
    AnnounceRequest,
    PeerAddress,
    ScrapeEntry,
    TrackerError,
    announce_response,
    peer_address,
)
from tracker.settings import TrackerSettings

log = logging.getLogger("modeltorrent.tracker")


def swarm_counts(session: Session, release_id: int | None, now: float) -> tuple[int, int]:
    """(seeders, leechers) among the peers of a release that have not expired by ``now``. A seedbox
    counts as a seeder while it ingests: it is the swarm's source, and downloads from no host.
    A striped release counts hosts over its stripes' swarms: a seeder holds every stripe."""
    stripes = session.exec(select(Release.id).where(col(Release.stripe_of) == release_id)).all()
    if stripes:
        rows = session.exec(
            select(Peer.host_id, func.max(Peer.left), func.min(case((col(Host.role) == "seedbox", 1), else_=0)))
            .where(col(Peer.release_id).in_(stripes), col(Peer.expires) >= now, col(Peer.host_id) == col(Host.id))
            .group_by(col(Peer.host_id))
        ).all()
        held_all = sum(1 for _, left, seedbox in rows if left == 0 or seedbox)
        return held_all, len(rows) - held_all
    is_seeder = or_(col(Peer.left) == 0, col(Host.role) == "seedbox")
    seeders, total = session.exec(
        select(func.coalesce(func.sum(case((is_seeder, 1), else_=0)), 0), func.count())
        .where(col(Peer.release_id) == release_id, col(Peer.expires) >= now, col(Peer.host_id) == col(Host.id))
    ).one()
    return int(seeders), int(total) - int(seeders)


class Directory:
    """In-process caches of what an announce needs and what rarely changes: hosts and releases.

    All hosts are reloaded in the background every ``ttl`` seconds (``refresh``), so a revocation
    made through another worker is seen within ``ttl``; one made through this worker at once
    (``invalidate``). An unknown passkey or info hash is looked up on its own row at once (a
    registration through another worker works immediately), at most ``lookups_per_second``
    (bursts of as many), so a peer spraying made-up passkeys cannot turn announces into database
    queries. ``generation`` changes with every change of hosts, so data derived from locations
    knows to rebuild.
    """

    def __init__(self, engine: Engine, ttl: float = 5.0, lookups_per_second: float = 50.0,
                 announces_per_host: float = 2.0, announce_burst: float = 30.0) -> None:
        self.engine = engine
        self._floods: dict[int, TokenBucket] = {}
        self._flood_limits = (announces_per_host, announce_burst)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._hosts_at = -1e9
        self._host_rows: list[Any] = []
        self._lookups = TokenBucket(lookups_per_second)
        self.generation = 0
        self.by_passkey: dict[str, HostInfo] = {}
        self.by_id: dict[int, HostInfo] = {}
        self.releases: dict[str, ReleaseInfo] = {}
        self._releases_loaded = False
        self._rack_hosts: tuple[int, dict[Location, list[int]]] | None = None

    def announce_allowed(self, host_id: int) -> bool:
        """Whether a host may announce now: at most ``announces_per_host`` a second in bursts of
        ``announce_burst``, in this worker. A fleet announces once an interval per torrent; a host
        announcing in a loop is refused before it costs the swarm anything."""
        bucket = self._floods.get(host_id)
        if bucket is None:
            bucket = self._floods[host_id] = TokenBucket(*self._flood_limits)
        return bucket.try_take()

    def warm(self, now: float) -> None:
        """Load hosts and releases now (start-up), not at the first announce."""
        self._load_hosts(now)
        self._load_releases()

    def invalidate(self) -> None:
        with self._lock:
            self._hosts_at = -1e9

    def host(self, passkey: str, now: float) -> HostInfo | None:
        if self._hosts_at < 0:  # first use; from then on the background thread reloads
            self._load_hosts(now)
        info = self.by_passkey.get(passkey)
        if info is None and self._lookups.try_take():
            with self.engine.connect() as conn:
                row = conn.execute(_HOST_BY_PASSKEY, {"passkey": passkey}).first()
            if row is not None:
                info = self._add_host(*row)
        return info

    def host_by_id(self, hid: int) -> HostInfo | None:
        """A host with a peer in a swarm, looked up on its own row if this worker has not loaded it
        yet (registered through another worker since the last reload); rate-limited like passkeys."""
        info = self.by_id.get(hid)
        if info is None and self._lookups.try_take():
            with self.engine.connect() as conn:
                row = conn.execute(_HOST_BY_ID, {"id": hid}).first()
            if row is not None:
                info = self._add_host(*row)
        return info

    def refresh(self, now: float) -> None:
        """Reload hosts when they are older than ``ttl`` (background thread, off the announce path)."""
        if now - self._hosts_at > self.ttl:
            self._load_hosts(now)

    def release(self, info_hash: bytes) -> ReleaseInfo | None:
        key = info_hash.hex()
        if not self._releases_loaded:
            self._load_releases()
        info = self.releases.get(key)
        if info is None and self._lookups.try_take():
            with self.engine.connect() as conn:
                rows = conn.execute(_RELEASE_BY_HASH, {"h": key}).all()
            self._add_releases(rows)  # releases never change once registered: cached for good
            info = self.releases.get(key)
        return info

    def _load_releases(self) -> None:
        with self.engine.connect() as conn:
            self._add_releases(conn.execute(_RELEASES).all())
        self._releases_loaded = True

    def _add_releases(self, rows: Sequence[Any]) -> None:  # _RELEASE_COLUMNS
        found = {}
        for rid, v1, v2, total, torrent_size, stripe, name, version, stripe_of in rows:
            info = ReleaseInfo(rid, total, torrent_size or total, f"{name}@{version}", stripe if stripe_of else None)
            for key in (v1, v2):  # hybrid: both info hashes are one swarm
                if key:
                    found[key] = info
        with self._lock:
            self.releases = self.releases | found

    def rack_hosts(self) -> dict[Location, list[int]]:
        """Each rack's registered client hosts that are not revoked, in registration order."""
        cached = self._rack_hosts
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        racks: dict[Location, list[int]] = {}
        for hid, info in sorted(self.by_id.items()):
            if not info.seedbox and not info.revoked:
                racks.setdefault(info.location, []).append(hid)
        self._rack_hosts = (self.generation, racks)
        return racks

    def _add_host(self, hid: int, passkey: str, location: str, role: str, revoked: bool) -> HostInfo:
        info = HostInfo.from_row(hid, location, role, revoked)
        with self._lock:
            self.by_passkey = self.by_passkey | {passkey: info}
            self.by_id = self.by_id | {hid: info}
            self.generation += 1
        return info

    def _load_hosts(self, now: float) -> None:
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            cursor.execute(_HOSTS.text)
            rows = list(cursor.fetchall())  # tuples made by the driver: comparing them costs no Python per row
            conn.commit()
        finally:
            conn.close()
        if rows == self._host_rows:
            self._hosts_at = now
            return
        self._host_rows = rows
        by_passkey, by_id = {}, {}
        for hid, passkey, location, role, revoked in rows:
            info = HostInfo.from_row(hid, location, role, revoked)
            by_passkey[passkey] = info
            by_id[hid] = info
        with self._lock:
            if (by_passkey, by_id) != (self.by_passkey, self.by_id):
                self.by_passkey, self.by_id = by_passkey, by_id
                self.generation += 1
            self._hosts_at = now


_HOSTS = text("SELECT id, passkey, location, role, revoked FROM host ORDER BY id")
_HOST_BY_ID = text("SELECT id, passkey, location, role, revoked FROM host WHERE id = :id")
_HOST_BY_PASSKEY = text("SELECT id, passkey, location, role, revoked FROM host WHERE passkey = :passkey")
_RELEASE_COLUMNS = "id, info_hash_v1, info_hash_v2, total_size, torrent_size, stripe, name, version, stripe_of"
_RELEASES = text(f"SELECT {_RELEASE_COLUMNS} FROM release")
_RELEASE_BY_HASH = text(f"SELECT {_RELEASE_COLUMNS} FROM release "
                        "WHERE info_hash_v1 = :h OR info_hash_v2 = :h")


class Indexes:
    """Each swarm's peer index (``SwarmIndex``), rebuilt only when the swarm's view or the host
    directory has changed, or a peer in it has expired: steady re-announces of a settled swarm
    cost a few draws each, not a pass over the swarm. Peers that announced ``port=0`` accept no
    connections: they are told about others but not handed out, nor counted."""

    def __init__(self, policy: Policy, *, flat: bool = False, settle: float = 0.0) -> None:
        self.policy = policy
        self.flat = flat  # locations ignored: peers at random, as a stock tracker hands them out
        self.settle = settle  # s before a stripe's absent host is stood in for (tracker/peers.py)
        self._cache: dict[int, tuple[int, int, float, SwarmIndex[PeerKey]]] = {}

    def get(self, release: ReleaseInfo, view: View, directory: Directory, now: float) -> SwarmIndex[PeerKey]:
        cached = self._cache.get(release.id)
        if cached is not None and cached[0] == view.version and cached[1] == directory.generation \
                and cached[2] >= now:
            return cached[3]
        unknown = HostInfo(-1, Location(), False, False)
        candidates = []
        soonest = float("inf")
        for peer in view.rows.values():
            if peer.expires < now or peer.port == 0:
                continue
            soonest = min(soonest, peer.expires)
            # Where a peer is decides who hears of it: a host this worker has not loaded yet is
            # looked up, not taken for a stranger in another rack.
            info = directory.host_by_id(peer.host_id) or unknown
            candidates.append(Candidate(peer_address(peer.ip, peer.port, bytes.fromhex(peer.peer_id)),
                                        Location() if self.flat else info.location,
                                        has_pieces=holds_pieces(peer.left, release.total_size,
                                                                release.torrent_size),
                                        seed=peer.left == 0,
                                        seedbox=info.seedbox, first_seen=peer.first_seen, host=peer.host_id))
        stripe = None
        if release.stripe is not None and not self.flat:
            stripe = Stripe(release.stripe, directory.rack_hosts(), now, self.settle)
            soonest = min(soonest, now + 1.0)  # a rack settles with time, not with an announce
        index = SwarmIndex(candidates, self.policy, stripe)
        if cached is not None and not self.flat:
            _say_gateway_changes(release, cached[3], index)
        self._cache[release.id] = (view.version, directory.generation, soonest, index)
        return index


def _say_gateway_changes(release: ReleaseInfo, old: SwarmIndex[PeerKey], new: SwarmIndex[PeerKey]) -> None:
    """Log a rack whose way in changed to another host (a gateway that finished, left or died; its
    stand-in is told about the seedbox at its next announce)."""
    before, after = old.gateways_by_rack(), new.gateways_by_rack()
    for rack, keys in after.items():
        was = before.get(rack)
        if was and was != keys:
            log.info("%s: rack %s enters through %s (was %s)", release.ref, rack,
                     ", ".join(f"{k.ip}:{k.port}" for k in keys), ", ".join(f"{k.ip}:{k.port}" for k in was))


PeerKey = PeerAddress  # how a candidate is named in an index: what the answer lists


@dataclass(frozen=True)
class HostInfo:
    id: int
    location: Location
    seedbox: bool
    revoked: bool

    @classmethod
    def from_row(cls, hid: int, location: str, role: str, revoked: bool) -> HostInfo:
        return cls(hid, Location.parse(location), role == "seedbox", bool(revoked))


@dataclass(frozen=True)
class ReleaseInfo:
    id: int
    total_size: int
    torrent_size: int  # with padding, as clients count it
    ref: str = ""  # name@version, for logs (a stripe's: name@version#stripe-k)
    stripe: int | None = None  # a stripe's index (tracker/peers.py, stripe_gateways); None: not a stripe

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
TOO_OFTEN = "announcing too often: wait for the interval the tracker gave"


def find_release(session: Session, info_hash: bytes) -> Release | None:
    h = info_hash.hex()
    return session.exec(
        select(Release).where(or_(col(Release.info_hash_v1) == h, col(Release.info_hash_v2) == h))
    ).first()


def announce(
    settings: TrackerSettings,
    directory: Directory,
    store: PeerStore,
    indexes: Indexes,
    req: AnnounceRequest,
    ip: str,
    now: float,
    rng: random.Random,
    user_agent: str = "",
) -> bytes:
    """Record the announce and answer it. Raises TrackerError if it is refused.

    The hot path touches no database in the common case: hosts and releases come from the
    directory's cache, the swarm from this worker's peer store (which writes behind and is
    refreshed in the background), the answer from the swarm's prebuilt index.
    """
    host = directory.host(req.passkey, now)
    if host is None:
        raise TrackerError(UNKNOWN_PASSKEY)
    if host.revoked:
        raise TrackerError(REVOKED)
    if not directory.announce_allowed(host.id):
        raise TrackerError(TOO_OFTEN)
    release = directory.release(req.info_hash)
    if release is None:
        raise TrackerError("unregistered torrent")
    peer_id = req.peer_id.hex()
    stopped = req.event == "stopped"
    # No ``left``: as if it held nothing (never taken for a seed).
    left = req.left if req.left is not None else release.torrent_size
    announced = None if stopped else Announced(host.id, ip, req.port, left, req.uploaded, req.downloaded)
    first_seen = store.record(release.id, peer_id, announced, completed=req.event == "completed", now=now,
                              tracker_ttl=settings.interval * settings.peer_ttl_factor, ours=is_ours(user_agent))
    index = indexes.get(release, store.view(release.id), directory, now)
    numwant = min(req.numwant if req.numwant is not None else settings.numwant_default, settings.numwant_max)
    asker = Asker(Location() if indexes.flat else host.location, first_seen, seed=left == 0,
                  seedbox=host.seedbox, host=host.id)
    me = None if stopped else peer_address(ip, req.port, req.peer_id)
    chosen = index.select(asker, 0 if stopped else numwant, rng, exclude=me)
    # The counts leave the asker out, as its peer list does.
    listed = not stopped and req.port != 0  # in the index, and so in its counts
    seeds = index.seeds - (1 if listed and left == 0 else 0)
    others = len(index.candidates) - (1 if listed else 0)
    # Jitter spreads re-announces out, so a fleet started together does not stay in lockstep.
    min_interval = min(settings.min_interval, settings.interval)
    interval = round(settings.interval * (1 + rng.uniform(-1, 1) * settings.interval_jitter))
    return announce_response(
        interval=max(interval, min_interval),
        min_interval=min_interval,
        complete=seeds,
        incomplete=others - seeds,
        peers=chosen,
        compact_form=req.compact,
    )


def expire_peers(session: Session, now: float) -> int:
    """Drop peers whose time is up (run by the reconcile loop; see tracker.lifetime)."""
    result = session.connection().execute(delete(Peer).where(col(Peer.expires) < now))
    session.commit()
    return int(result.rowcount or 0)


def scrape(
    session: Session, settings: TrackerSettings, passkey: str, hashes: list[bytes], now: float
) -> list[ScrapeEntry]:
    """Swarm counts for registered torrents only; strangers are refused by authenticate."""
    authenticate(session, passkey)
    wanted = hashes or [bytes.fromhex(r.info_hash_v1 or r.info_hash_v2 or "")
                        for r in session.exec(published()).all()]
    entries = []
    for info_hash in wanted[:100]:
        release = find_release(session, info_hash)
        if release is None:
            continue
        seeders, leechers = swarm_counts(session, release.id, now)
        done = session.get(Completion, release.id)
        entries.append(ScrapeEntry(info_hash, seeders, leechers, done.count if done else 0))
    return entries
