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
from common.milestones import Milestones
from tracker.api_client import BackgroundReporter, TrackerClient

log = logging.getLogger("modeltorrent.agent")


def run_agent(overrides: dict[str, Any], *, poll_interval: float, location: str | None) -> None:
    settings = ClientSettings(**overrides)
    api = TrackerClient(settings.tracker_url, passkey=settings.passkey.get_secret_value())
    reporter = BackgroundReporter(api, settings.status_interval)

    def on_failure(name: str, version: str, exc: Exception) -> None:
        reporter.submit(name=name, version=version, state="failed", error=str(exc)[:4000])

    metrics = client_metrics(settings)
    progress: dict[str, Milestones] = {}

    def on_progress(p: Progress) -> None:
        reporter.progress(p)
        if metrics:
            metrics.observe(p)
        ref = f"{p.name}@{p.version}"
        tenths = progress.setdefault(ref, Milestones(p.total_size))
        if p.state == "downloading" and (step := tenths.passed(p.bytes_done)) is not None:
            log.info("%s: %d%% verified (%d of %d pieces, %.0f MB/s, %d peers)", ref, step, p.pieces_verified,
                     p.num_pieces, p.download_rate / 1e6, p.peers)

    agent = Agent(settings, api, on_progress, on_failure, poll_interval=poll_interval, location=location)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: agent.stop.set())
    log.info("agent ready: store %s, tracker %s (polled every %.0f s), listening on %s", settings.root,
             settings.tracker_url, poll_interval, settings.listen)
    try:
        agent.run()
    finally:
        reporter.close()
        api.close()
