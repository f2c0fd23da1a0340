"""``modeltorrent client run``: the agent loop, reporting progress to the tracker."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from client.agent import Agent
from client.fetch import Progress
from client.metrics import client_metrics
from client.settings import ClientSettings
from tracker.api_client import BackgroundReporter, TrackerClient

log = logging.getLogger("modeltorrent.agent")


def run_agent(overrides: dict[str, Any], *, poll_interval: float, location: str | None) -> None:
    settings = ClientSettings(**overrides)
    api = TrackerClient(settings.tracker_url, passkey=settings.passkey.get_secret_value())
    reporter = BackgroundReporter(api, settings.status_interval)

    def on_failure(name: str, version: str, exc: Exception) -> None:
        reporter.submit(name=name, version=version, state="failed", error=str(exc)[:4000])

    metrics = client_metrics(settings)

    def on_progress(p: Progress) -> None:
        reporter.progress(p)
        if metrics:
            metrics.observe(p)

    agent = Agent(settings, api, on_progress, on_failure, poll_interval=poll_interval, location=location)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: agent.stop.set())
    log.info("agent polling %s every %.0fs", settings.tracker_url, poll_interval)
    try:
        agent.run()
    finally:
        reporter.close()
        api.close()
