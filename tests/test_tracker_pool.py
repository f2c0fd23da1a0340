"""The tracker under many API requests at once, with announces that need the database: nothing
waits for the connection pool's timeout. Real tracker process (uvicorn), SQLite.

Seen in the lab (20 hosts x 10 stripes announcing, status reports each second): the tracker stopped
answering, then failed requests with "QueuePool limit ... reached" after 30 s. A request's
dependencies and route run as separate calls into anyio's 40 worker threads and its session keeps
a connection between them: with more requests than connections, every thread waited in the pool
for a connection held by a request waiting for a thread (py-spy: all workers in ``QueuePool._do_get``
under ``optional_host``). Without the fix (tracker/deps.py) 1,135 of these 1,200 went unanswered."""

from __future__ import annotations

import os
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import httpx

from tracker.api_client import TrackerClient

REQUESTS = 1000  # API requests, 150 at a time: far more than the pool's 15 connections (SQLite's default)
ANNOUNCES = 200  # each for an info hash the tracker has not seen: a database lookup on the event loop


def test_api_requests_and_announces_at_once_all_get_answers(tracker_url: str, admin: TrackerClient) -> None:
    passkey = admin.add_host("h1")["passkey"]
    # Each waits at most 20 s: well under the pool's 30 s timeout, which is what a stuck loop shows.
    api = httpx.Client(base_url=tracker_url, headers={"X-Passkey": passkey}, timeout=20,
                       limits=httpx.Limits(max_connections=150, keepalive_expiry=1))
    failures: list[str] = []
    lock = threading.Lock()

    def call_api(_: int) -> None:
        try:
            api.get("/api/torrents").raise_for_status()
        except httpx.HTTPError as exc:
            with lock:
                failures.append(f"api: {exc!r}")

    def announce(_: int) -> None:
        query = urllib.parse.urlencode({"info_hash": os.urandom(20), "peer_id": os.urandom(20), "port": 6881,
                                        "uploaded": 0, "downloaded": 0, "left": 1, "compact": 1,
                                        "passkey": passkey})
        try:
            reply = httpx.get(f"{tracker_url}/announce?{query}", timeout=20)
            assert reply.status_code == 200 and reply.content.startswith(b"d")
        except httpx.HTTPError as exc:
            with lock:
                failures.append(f"announce: {exc!r}")

    with ThreadPoolExecutor(200) as pool:
        jobs = [pool.submit(call_api, i) for i in range(REQUESTS)]
        jobs += [pool.submit(announce, i) for i in range(ANNOUNCES)]
        for job in jobs:
            job.result()
    api.close()
    assert not failures, f"{len(failures)} of {REQUESTS + ANNOUNCES} requests unanswered: {failures[:3]}"
