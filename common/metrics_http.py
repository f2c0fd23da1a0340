"""Serving a Prometheus collector on ``host:port`` (seedbox and client agents)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.registry import Collector


def serve_metrics(address: str, collector: Collector) -> None:
    """``/metrics`` on ``host:port``, from a daemon thread of prometheus-client's own HTTP server."""
    host, _, port = address.rpartition(":")
    registry = CollectorRegistry()
    registry.register(collector)
    start_http_server(int(port), addr=host or "0.0.0.0", registry=registry)
