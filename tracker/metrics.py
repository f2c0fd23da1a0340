"""Prometheus metrics of one tracker app (its own registry, so tests can build many apps)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from tracker.jobs import HostState
from tracker.models import Deployment, DeploymentHost, Host, HostStatus, Release, published
from tracker.settings import TrackerSettings
from tracker.swarm import swarm_counts


class SwarmCollector(Collector):
    """Reads swarm sizes from the database at scrape time, so every worker reports the same."""

    def __init__(self, engine: Engine, settings: TrackerSettings) -> None:
        self.engine = engine
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = time.time()
        seeders = GaugeMetricFamily("modeltorrent_swarm_seeders", "Seeders per torrent", labels=["torrent"])
        leechers = GaugeMetricFamily("modeltorrent_swarm_leechers", "Leechers per torrent", labels=["torrent"])
        hosts = GaugeMetricFamily("modeltorrent_hosts", "Registered hosts", labels=["state"])
        job_hosts = GaugeMetricFamily("modeltorrent_deployment_hosts", "Hosts of a deployment by state",
                                      labels=["deployment", "model", "state"])
        job_bytes = GaugeMetricFamily("modeltorrent_deployment_bytes_done", "Verified bytes on a deployment's hosts",
                                      labels=["deployment", "model"])
        reported = GaugeMetricFamily("modeltorrent_reported_bytes", "Bytes hosts last reported, per torrent",
                                     labels=["torrent", "kind"])
        with Session(self.engine) as session:
            for release in session.exec(published()).all():
                n_seeders, n_leechers = swarm_counts(session, release.id, now)
                ref = f"{release.name}@{release.version}"
                seeders.add_metric([ref], n_seeders)
                leechers.add_metric([ref], n_leechers)
            recent = session.exec(select(Deployment).order_by(col(Deployment.id).desc()).limit(50)).all()
            for job in recent:
                job_release = session.get(Release, job.release_id)
                ref = f"{job_release.name}@{job_release.version}" if job_release else "?"
                job_states: dict[str, int] = {}
                done = 0
                for row in session.exec(select(DeploymentHost).where(DeploymentHost.deployment_id == job.id)).all():
                    job_states[row.state] = job_states.get(row.state, 0) + 1
                    done += row.bytes_done
                for state in HostState:
                    job_hosts.add_metric([str(job.id), ref, state.value], job_states.get(state.value, 0))
                job_bytes.add_metric([str(job.id), ref], done)
            sums = session.exec(
                select(Release.name, Release.version, func.sum(HostStatus.bytes_done),
                       func.sum(HostStatus.bytes_downloaded))
                .where(col(HostStatus.release_id) == col(Release.id)).group_by(Release.name, Release.version)
            ).all()
            for name, version, done_sum, downloaded_sum in sums:
                reported.add_metric([f"{name}@{version}", "verified"], done_sum or 0)
                reported.add_metric([f"{name}@{version}", "downloaded"], downloaded_sum or 0)
            rows = session.exec(select(col(Host.revoked), func.count()).group_by(col(Host.revoked))).all()
            by_state = {bool(r): n for r, n in rows}
            hosts.add_metric(["active"], by_state.get(False, 0))
            hosts.add_metric(["revoked"], by_state.get(True, 0))
        yield seeders
        yield leechers
        yield hosts
        yield job_hosts
        yield job_bytes
        yield reported


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
        # Bound once: looking up a labelled child costs more than the increment, on every announce.
        self.announce_ok = self.announces.labels("ok")
        self.announce_refused = self.announces.labels("refused")
        self.announce_error = self.announces.labels("error")
        self.announce_latency = self.latency.labels("announce")
        self.swarms = SwarmCollector(engine, settings)
        self.registry.register(self.swarms)

    def exposition(self) -> CollectorRegistry:
        """What /metrics shows. With several workers (PROMETHEUS_MULTIPROC_DIR set), the counters
        of every worker are summed from their files; swarm gauges come from the shared database."""
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            return self.registry
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(self.swarms)
        return registry
