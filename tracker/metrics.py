"""Prometheus metrics of one tracker app (its own registry, so tests can build many apps)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tracker.models import Host, Peer, Release
from tracker.settings import TrackerSettings


class SwarmCollector(Collector):
    """Reads swarm sizes from the database at scrape time, so every worker reports the same."""

    def __init__(self, engine: Engine, settings: TrackerSettings) -> None:
        self.engine = engine
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        horizon = time.time() - self.settings.interval * self.settings.peer_ttl_factor
        seeders = GaugeMetricFamily("modeltorrent_swarm_seeders", "Seeders per torrent", labels=["torrent"])
        leechers = GaugeMetricFamily("modeltorrent_swarm_leechers", "Leechers per torrent", labels=["torrent"])
        hosts = GaugeMetricFamily("modeltorrent_hosts", "Registered hosts", labels=["state"])
        with Session(self.engine) as session:
            for release in session.exec(select(Release)).all():
                counts = dict(
                    session.exec(
                        select(col(Peer.left) == 0, func.count())
                        .where(col(Peer.release_id) == release.id, col(Peer.last_seen) >= horizon)
                        .group_by(col(Peer.left) == 0)
                    ).all()
                )
                ref = f"{release.name}@{release.version}"
                seeders.add_metric([ref], counts.get(True, 0))
                leechers.add_metric([ref], counts.get(False, 0))
            rows = session.exec(select(col(Host.revoked), func.count()).group_by(col(Host.revoked))).all()
            by_state = {bool(r): n for r, n in rows}
            hosts.add_metric(["active"], by_state.get(False, 0))
            hosts.add_metric(["revoked"], by_state.get(True, 0))
        yield seeders
        yield leechers
        yield hosts


class TrackerMetrics:
    def __init__(self, engine: Engine, settings: TrackerSettings) -> None:
        self.registry = CollectorRegistry()
        self.announces = Counter(
            "modeltorrent_announces", "Announces by result", ["result"], registry=self.registry
        )
        self.latency = Histogram(
            "modeltorrent_request_seconds", "Request latency", ["route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.registry.register(SwarmCollector(engine, settings))
