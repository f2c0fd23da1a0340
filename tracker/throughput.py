"""The fleet's aggregate download rate now, and its history for the page (kept in the database,
so every worker and every browser sees the same curve, from before the page was opened)."""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import Session, col, select

from tracker.models import Host, HostStatus, ThroughputSample

RECENT = 10.0  # seconds: a report this fresh counts toward the current throughput
EVERY = 5.0  # seconds between samples (the reconcile loop runs every 5 s by default)
KEEP = 24 * 3600.0  # seconds of history kept
SHOWN = 3600.0  # seconds of history the page gets
DOWNLOADING = ("downloading", "checking", "starting")


def current(session: Session, now: float) -> tuple[float, int]:
    """(bytes/s, hosts): the sum of the rates hosts (not seedboxes) downloading reported recently."""
    rows = session.exec(
        select(HostStatus.download_rate, HostStatus.updated_at, HostStatus.state)
        .where(col(HostStatus.host_id) == col(Host.id), col(Host.role) != "seedbox")
    ).all()
    live = [rate for rate, at, state in rows if now - at <= RECENT and state in DOWNLOADING]
    return sum(live), len(live)


def sample(session: Session, now: float) -> None:
    """Record the current rate in its time slot, once (workers race harmlessly: the first row stays)."""
    bucket = int(now // EVERY)
    if session.get(ThroughputSample, bucket) is None:
        rate, hosts = current(session, now)
        session.add(ThroughputSample(bucket=bucket, time=now, download_rate=rate, hosts=hosts))
        session.connection().execute(delete(ThroughputSample).where(col(ThroughputSample.time) < now - KEEP))
        try:
            session.commit()
        except Exception:  # another worker wrote this slot first
            session.rollback()


def history(session: Session, now: float) -> list[tuple[float, float]]:
    rows = session.exec(select(ThroughputSample.time, ThroughputSample.download_rate)
                        .where(col(ThroughputSample.time) >= now - SHOWN).order_by(col(ThroughputSample.bucket))).all()
    return [(t, r) for t, r in rows]
