"""Announce and scrape against the peer store in the database."""

from __future__ import annotations

import random

from sqlalchemy import case, delete, func, or_
from sqlmodel import Session, col, select

from tracker.models import Completion, Host, Peer, Release
from tracker.peers import Asker, Candidate, Location, Policy, select_peers
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


def authenticate(session: Session, passkey: str) -> Host:
    """Raises TrackerError for an unknown or revoked passkey."""
    host = session.exec(select(Host).where(Host.passkey == passkey)).first()
    if host is None:
        raise TrackerError("unknown passkey: register this host with `modeltorrent hosts add`")
    if host.revoked:
        raise TrackerError("this host's passkey was revoked")
    return host


def find_release(session: Session, info_hash: bytes) -> Release | None:
    h = info_hash.hex()
    return session.exec(
        select(Release).where(or_(col(Release.info_hash_v1) == h, col(Release.info_hash_v2) == h))
    ).first()


def announce(
    session: Session,
    settings: TrackerSettings,
    req: AnnounceRequest,
    ip: str,
    now: float,
    rng: random.Random,
) -> tuple[bytes, Release]:
    """Record the announce and answer it. Raises TrackerError if it is refused."""
    host = authenticate(session, req.passkey)
    release = find_release(session, req.info_hash)
    if release is None:
        raise TrackerError("unregistered torrent")
    assert release.id is not None and host.id is not None
    peer_id = req.peer_id.hex()
    horizon = now - settings.interval * settings.peer_ttl_factor
    session.exec(  # type: ignore[call-overload]
        delete(Peer).where(col(Peer.release_id) == release.id, col(Peer.last_seen) < horizon)
    )
    existing = session.get(Peer, (release.id, peer_id))
    if req.event == "stopped":
        if existing is not None:
            session.delete(existing)
    else:
        if req.event == "completed" and (existing is None or existing.left > 0):
            done = session.get(Completion, release.id) or Completion(release_id=release.id)
            done.count += 1
            session.add(done)
        peer = existing or Peer(release_id=release.id, peer_id=peer_id, host_id=host.id, ip=ip,
                                port=req.port, left=req.left)
        peer.host_id, peer.ip, peer.port, peer.left = host.id, ip, req.port, req.left
        peer.uploaded, peer.downloaded, peer.last_seen = req.uploaded, req.downloaded, now
        session.add(peer)
    session.commit()
    first_seen = existing.first_seen if existing is not None else now

    rows = session.exec(
        select(Peer, Host).where(col(Peer.release_id) == release.id, col(Peer.host_id) == col(Host.id))
    ).all()
    others = [(p, h) for p, h in rows if p.peer_id != peer_id]
    complete = sum(1 for p, _ in others if p.left == 0)
    numwant = min(req.numwant if req.numwant is not None else settings.numwant_default,
                  settings.numwant_max)
    candidates = [
        Candidate(p, Location.parse(h.location), has_pieces=p.left < release.total_size,
                  seed=p.left == 0, seedbox=h.role == "seedbox", first_seen=p.first_seen)
        for p, h in others
    ]
    asker = Asker(Location.parse(host.location), first_seen, seed=req.left == 0,
                  seedbox=host.role == "seedbox")
    policy = Policy(remote_share=settings.remote_share, seedbox_per_rack=settings.seedbox_per_rack)
    chosen = select_peers(asker, candidates, 0 if req.event == "stopped" else numwant, rng, policy)
    # Jitter spreads re-announces out, so a fleet started together does not stay in lockstep.
    min_interval = min(settings.min_interval, settings.interval)
    interval = round(settings.interval * (1 + rng.uniform(-1, 1) * settings.interval_jitter))
    body = announce_response(
        interval=max(interval, min_interval),
        min_interval=min_interval,
        complete=complete,
        incomplete=len(others) - complete,
        peers=[PeerAddress(p.ip, p.port, bytes.fromhex(p.peer_id)) for p in chosen],
        compact_form=req.compact,
    )
    return body, release


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
