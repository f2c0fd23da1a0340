"""The host agent: poll the tracker for this host's desired models, fetch and activate them.

One model version at a time. After activating it, the agent keeps seeding while its deployment
is still running (other hosts need the pieces), then goes back to polling. A deployment that is
cancelled, or superseded by a newer one for the same model, stops its download (the staging folder
stays, so a later deployment resumes it). A failed fetch is retried with exponential backoff.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from client.fetch import Fetcher, Progress
from client.settings import ClientSettings
from client.store import ModelStore
from common.backoff import backoff_delay
from common.errors import ApiError, ModeltorrentError
from tracker.api_client import TrackerClient

log = logging.getLogger("modeltorrent.agent")
_rng = random.Random()  # retry jitter: spread, not secrecy
FINAL = {"activated", "partially_failed", "failed", "superseded", "cancelled"}


@dataclass
class _Backoff:
    base: float = 5.0
    cap: float = 600.0
    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    until: dict[tuple[str, str], float] = field(default_factory=dict)

    def ready(self, item: tuple[str, str], now: float) -> bool:
        return now >= self.until.get(item, 0.0)

    def failed(self, item: tuple[str, str], now: float) -> float:
        n = self.failures.get(item, 0) + 1
        self.failures[item] = n
        delay = backoff_delay(n, self.base, self.cap, _rng)
        self.until[item] = now + delay
        return delay

    def succeeded(self, item: tuple[str, str]) -> None:
        self.failures.pop(item, None)
        self.until.pop(item, None)


class Agent:
    def __init__(self, settings: ClientSettings, api: TrackerClient,
                 on_progress: Callable[[Progress], None] | None = None,
                 on_failure: Callable[[str, str, Exception], None] | None = None,
                 poll_interval: float = 5.0, location: str | None = None) -> None:
        self.settings = settings
        self.api = api
        self.store = ModelStore(settings.root)
        self.on_progress = on_progress
        self.on_failure = on_failure
        self.poll_interval = poll_interval
        self.location = location
        self.stop = threading.Event()
        self.backoff = _Backoff()

    def run(self) -> None:
        """Poll and fetch until ``stop`` is set. Tracker outages are waited out, not fatal."""
        hello_sent = False
        while not self.stop.is_set():
            try:
                if not hello_sent:
                    self.api.hello(self.location)
                    hello_sent = True
                desired = self.api.desired()
            except ApiError as exc:
                log.warning("cannot poll the tracker: %s", exc)
                self.stop.wait(self.poll_interval)
                continue
            todo = self._next(desired)
            if todo is None:
                self.stop.wait(self.poll_interval)
                continue
            self._fetch(todo)

    def _next(self, desired: list[dict[str, Any]]) -> dict[str, Any] | None:
        now = time.monotonic()
        for item in desired:
            key = (item["name"], item["version"])
            if item["state"] == "cancelled" or not self.backoff.ready(key, now):
                continue
            if self.store.active_version(item["name"]) != item["version"]:
                return item
        return None

    def _fetch(self, item: dict[str, Any]) -> None:
        name, version, job_id = item["name"], item["version"], item["deployment_id"]
        fetcher = Fetcher(self.settings, self.api, self.on_progress)
        watch = _Watch(self.api, name, job_id, self.poll_interval)
        watch.start(lambda: fetcher.stop.set(), self.stop)
        try:
            log.info("fetching %s@%s for deployment %s", name, version, job_id)
            fetcher.fetch(name, version, keep_seeding=lambda: watch.job_running and not watch.superseded)
            self.backoff.succeeded((name, version))
        except ModeltorrentError as exc:
            if watch.superseded or self.stop.is_set():
                log.info("stopped fetching %s@%s: %s", name, version, exc)
                return
            delay = self.backoff.failed((name, version), time.monotonic())
            log.error("fetching %s@%s failed (retry in %.0fs): %s", name, version, delay, exc)
            if self.on_failure:
                self.on_failure(name, version, exc)
        finally:
            watch.close()


class _Watch:
    """Polls the desired list while a fetch runs: is the job still running, is it still wanted?"""

    def __init__(self, api: TrackerClient, name: str, job_id: int, interval: float) -> None:
        self.api = api
        self.name = name
        self.job_id = job_id
        self.interval = interval
        self.job_running = True
        self.superseded = False
        self._closed = threading.Event()

    def start(self, on_superseded: Callable[[], None], agent_stop: threading.Event) -> None:
        def loop() -> None:
            while not self._closed.wait(self.interval):
                if agent_stop.is_set():
                    on_superseded()
                    return
                try:
                    desired = {d["name"]: d for d in self.api.desired()}
                except ApiError:
                    continue  # keep going on what we know
                mine = desired.get(self.name)
                if mine is None or mine["deployment_id"] != self.job_id or mine["state"] == "cancelled":
                    self.superseded = True
                    on_superseded()
                    return
                self.job_running = mine["state"] not in FINAL

        threading.Thread(target=loop, name="watch", daemon=True).start()

    def close(self) -> None:
        self._closed.set()
