"""The seedbox's Prometheus metrics, read from its live ingest figures at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from seedbox.seeder import IngressStats

STATES = ("starting", "checking", "ingesting", "seeding", "failed")


class SeedboxCollector(Collector):
    def __init__(self, ref: str, stats: IngressStats, bytes_read: Callable[[], int], total_size: int) -> None:
        self.ref = ref
        self.stats = stats
        self.bytes_read = bytes_read
        self.total_size = total_size

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        s, labels = self.stats, [self.ref]

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(f"modeltorrent_seedbox_{name}", doc, labels=["model"])
            family.add_metric(labels, value)
            return family

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(f"modeltorrent_seedbox_{name}", doc, labels=["model"])
            family.add_metric(labels, value)
            return family

        yield counter("ingress_bytes", "Bytes read from external storage", self.bytes_read())
        yield counter("pieces_verified", "Pieces verified against the manifest and in the swarm", s.pieces_done)
        yield counter("pieces_failed", "Pieces the source served with the wrong bytes", s.bad_pieces)
        yield counter("upload_bytes", "Payload uploaded to the swarm", s.uploaded)
        yield gauge("bytes_done", "Bytes of the model in the swarm", s.bytes_done)
        yield gauge("model_bytes", "Size of the model", self.total_size)
        yield gauge("peers", "Connected peers", s.peers)
        state = GaugeMetricFamily("modeltorrent_seedbox_state", "1 for the current state", labels=["model", "state"])
        for name in STATES:
            state.add_metric([self.ref, name], 1.0 if s.state == name else 0.0)
        yield state

