"""A client host's Prometheus metrics: the latest progress of each model it fetches or seeds."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from client.fetch import Progress
from client.settings import ClientSettings
from common.metrics_http import serve_metrics

STATES = ("starting", "checking", "downloading", "activating", "activated", "seeding", "failed")


class ClientCollector(Collector):
    def __init__(self) -> None:
        self._latest: dict[str, Progress] = {}
        self._lock = threading.Lock()

    def observe(self, progress: Progress) -> None:
        with self._lock:
            self._latest[progress.name] = dataclasses.replace(progress)  # a copy: the fetch keeps mutating its own

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        with self._lock:
            latest = list(self._latest.values())
        labels = ["model", "version"]
        fams: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "bytes_done": GaugeMetricFamily("modeltorrent_client_bytes_done", "Verified bytes", labels=labels),
            "model_bytes": GaugeMetricFamily("modeltorrent_client_model_bytes", "Size of the model", labels=labels),
            "pieces": CounterMetricFamily("modeltorrent_client_pieces_verified", "Pieces verified", labels=labels),
            "failed": CounterMetricFamily("modeltorrent_client_hash_failures", "Pieces that failed their hash",
                                          labels=labels),
            "down": CounterMetricFamily("modeltorrent_client_download_bytes", "Payload downloaded (this run)",
                                        labels=labels),
            "reused": GaugeMetricFamily("modeltorrent_client_reused_bytes",
                                        "Bytes copied from other versions on this host instead of downloaded",
                                        labels=labels),
            "up": CounterMetricFamily("modeltorrent_client_upload_bytes", "Payload uploaded (this run)",
                                      labels=labels),
            "down_rate": GaugeMetricFamily("modeltorrent_client_download_rate", "Bytes/s downloaded", labels=labels),
            "up_rate": GaugeMetricFamily("modeltorrent_client_upload_rate", "Bytes/s uploaded", labels=labels),
            "peers": GaugeMetricFamily("modeltorrent_client_peers", "Connected peers", labels=labels),
        }
        state = GaugeMetricFamily("modeltorrent_client_state", "1 for the current state",
                                  labels=[*labels, "state"])
        for p in latest:
            key = [p.name, p.version]
            for name, value in (("bytes_done", p.bytes_done), ("model_bytes", p.total_size),
                                ("pieces", p.pieces_verified), ("failed", p.hash_failures),
                                ("down", p.bytes_downloaded), ("reused", p.bytes_reused), ("up", p.uploaded),
                                ("down_rate", p.download_rate),
                                ("up_rate", p.upload_rate), ("peers", p.peers)):
                fams[name].add_metric(key, value)
            for name in STATES:
                state.add_metric([*key, name], 1.0 if p.state == name else 0.0)
        yield from fams.values()
        yield state


def client_metrics(settings: ClientSettings) -> ClientCollector | None:
    """A collector served on ``settings.metrics_listen``, or None when metrics are off."""
    if not settings.metrics_listen:
        return None
    collector = ClientCollector()
    serve_metrics(settings.metrics_listen, collector)
    return collector
