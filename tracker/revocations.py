"""Which addresses peers must refuse: those of revoked hosts (``GET /api/peer-revocations``).

A revoked host gets no peer certificate and no announce, but the certificate it holds stays good
until it expires (``peer_cert_hours``), and a TLS connection already open is never checked again.
So hosts and seedboxes also ask the tracker which addresses to refuse, and
block them in libtorrent's IP filter, which also closes their open connections (every
``peer_revocation_poll`` seconds, ``common.peer_certs.REVOCATION_POLL`` by default). An address is
listed for ``peer_cert_hours`` after the revocation (the longest its certificate can still be
good), and never while a host that is not revoked is seen there too (hosts behind one NAT, or one
machine in a test): refusing it would cut an honest host off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from sqlalchemy import text
from sqlmodel import Session

from tracker.models import PeerAddress, now


def refused(revoked: Iterable[tuple[str, float]], honest: Iterable[str], at: float, window: float) -> list[str]:
    """Addresses to refuse at time ``at``: ``revoked`` (ip, revoked at) within ``window`` seconds,
    less any ip in ``honest`` (seen for a host that is not revoked). Pure; sorted."""
    keep = set(honest)
    return sorted({ip for ip, since in revoked if at - since < window and ip not in keep})


def record(session: Session, host_id: int, ip: str | None) -> None:
    """Remember that ``host_id`` was seen as a peer at ``ip`` (no commit)."""
    if not ip:
        return
    row = session.get(PeerAddress, (host_id, ip))
    if row is None:
        row = PeerAddress(host_id=host_id, ip=ip)
    row.seen_at = now()
    session.add(row)


def record_announced(session: Session, host_id: int) -> None:
    """At revocation: the addresses the host announced from (its rows in the swarms), remembered."""
    ips = session.execute(text("SELECT DISTINCT ip FROM peer WHERE host_id = :h"), {"h": host_id}).scalars().all()
    for ip in ips:
        record(session, host_id, str(ip))


def addresses(session: Session, window: float) -> list[str]:
    revoked = session.execute(text(
        "SELECT a.ip, h.revoked_at FROM peeraddress a JOIN host h ON h.id = a.host_id "
        "WHERE h.revoked AND h.revoked_at IS NOT NULL")).all()
    if not revoked:
        return []
    honest = session.execute(text(
        "SELECT a.ip FROM peeraddress a JOIN host h ON h.id = a.host_id WHERE NOT h.revoked "
        "UNION SELECT p.ip FROM peer p JOIN host h ON h.id = p.host_id WHERE NOT h.revoked")).scalars().all()
    return refused(((str(ip), float(at)) for ip, at in revoked), (str(ip) for ip in honest), now(), window)


class Listing:
    """``addresses``, worked out at most once every ``ttl`` seconds: every host asks (10,000 hosts
    every 30 s: 330 a second) and, with a revocation in the window, each answer reads the peer
    table. ``invalidate`` when a host is revoked or registered again (on this tracker: the other of
    a failover pair sees it within ``ttl``)."""

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: list[str] = []
        self._until = 0.0

    def get(self, session: Session, window: float) -> list[str]:
        with self._lock:
            if time.monotonic() >= self._until:
                self._value = addresses(session, window)
                self._until = time.monotonic() + self.ttl
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._until = 0.0
