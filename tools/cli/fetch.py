"""``modeltorrent client fetch``: the fetch engine with a progress bar and status reports."""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from client.fetch import Fetcher
from client.fetch import Progress as FetchProgress
from client.metrics import client_metrics
from client.settings import ClientSettings
from common.errors import ModeltorrentError
from tracker.api_client import BackgroundReporter, TrackerClient

log = logging.getLogger("modeltorrent.client")


def fetch(name: str, version: str, *, seed_for: float, json_out: bool, console: Console,
          overrides: dict[str, Any]) -> None:
    settings = ClientSettings(**overrides)
    api = TrackerClient(settings.tracker_url, passkey=settings.passkey.get_secret_value())
    reporter = BackgroundReporter(api, settings.status_interval)
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), "{task.fields[state]}", console=console,
                  disable=json_out or not console.is_terminal) as bar:
        task = bar.add_task(f"{name}@{version}", total=None, state="starting")

        metrics = client_metrics(settings)

        def on_progress(p: FetchProgress) -> None:
            bar.update(task, total=p.total_size, completed=p.bytes_done, state=p.state)
            reporter.progress(p)
            if metrics:
                metrics.observe(p)

        fetcher = Fetcher(settings, api, on_progress)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: fetcher.stop.set())
        try:
            result = fetcher.fetch(name, version, seed_for=float("inf") if seed_for < 0 else seed_for)
        except Exception as exc:
            reporter.submit(name=name, version=version, state="failed", error=str(exc)[:4000])
            raise
        finally:
            reporter.close()
            api.close()
    if json_out:
        print(json.dumps(dataclasses.asdict(result)))
    elif result.already_active:
        console.print(f"{name}@{version} is already active")
    else:
        reused = f", {result.pieces_reused} pieces reused from other versions" if result.pieces_reused else ""
        console.print(f"activated {name}@{version} in {result.elapsed:.1f}s "
                      f"({result.bytes_downloaded} bytes downloaded{reused})")
    if result.hook_error:
        raise ModeltorrentError(result.hook_error, hint=f"{name}@{version} is active; fix the hook, then run it "
                                "by hand or with `modeltorrent client rollback --to`")
