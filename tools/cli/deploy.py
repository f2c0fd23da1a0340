"""``modeltorrent deploy`` and ``modeltorrent status``: start jobs and watch them."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from common.units import format_size
from tracker.api_client import TrackerClient

FINAL = {"activated", "partially_failed", "failed", "cancelled"}
STYLE = {"activated": "green", "failed": "red", "stalled": "yellow", "partially_failed": "yellow",
         "cancelled": "dim", "superseded": "dim", "downloading": "cyan", "verifying": "blue"}


def jobs_table(jobs: list[dict[str, Any]]) -> Table:
    table = Table("job", "model", "state", "hosts", "created", title="deployments")
    for job in jobs:
        counts = job["hosts_by_state"]
        total = sum(counts.values())
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        table.add_row(str(job["id"]), f"{job['name']}@{job['version']}",
                      Text(job["state"], style=STYLE.get(job["state"], "")),
                      f"{counts.get('activated', 0)}/{total} activated ({summary})",
                      time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job["created_at"])))
    return table


def job_view(job: dict[str, Any]) -> Group:
    total = job["total_size"] or 1
    head = Text.assemble(f"job {job['id']} {job['name']}@{job['version']}: ",
                         (job["state"], STYLE.get(job["state"], "bold")))
    table = Table("location", "host", "state", "progress", "rate", "error")
    for h in job["hosts"]:
        pct = 100 * h["bytes_done"] / total
        table.add_row(h["location"], h["host"], Text(h["state"], style=STYLE.get(h["state"], "")),
                      f"{pct:5.1f}%", f"{format_size(h['download_rate'])}/s" if h["download_rate"] else "",
                      h["error"][:60])
    return Group(head, table)


def watch_job(api: TrackerClient, job_id: int, console: Console, *, timeout: float | None,
              interval: float = 1.0) -> dict[str, Any]:
    started = time.monotonic()
    job = api.deployment(job_id)
    with Live(job_view(job), console=console, refresh_per_second=4, transient=False) as live:
        while job["state"] not in FINAL and (timeout is None or time.monotonic() - started < timeout):
            time.sleep(interval)
            job = api.deployment(job_id)
            live.update(job_view(job))
    return job


def outcome(job: dict[str, Any]) -> tuple[bool, str]:
    if job["state"] == "activated":
        return True, f"job {job['id']}: every host activated {job['name']}@{job['version']}"
    bad = [f"{h['host']} ({h['state']}{': ' + h['error'] if h['error'] else ''})"
           for h in job["hosts"] if h["state"] != "activated"]
    return False, f"job {job['id']} is {job['state']}; not activated: {', '.join(bad)}"
