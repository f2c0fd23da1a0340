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


def eta_text(job: dict[str, Any]) -> str:
    """", 1.2 GiB/s, about 3 min to go" while the job's hosts move bytes; "" otherwise."""
    eta = job.get("eta_seconds")
    if not job.get("download_rate") or eta is None:
        return ""
    minutes = eta / 60
    left = f"{eta:.0f} s" if eta < 90 else f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"
    return f", {format_size(job['download_rate'])}/s, about {left} to go"


def job_view(job: dict[str, Any]) -> Group:
    total = job["total_size"] or 1
    head = Text.assemble(f"job {job['id']} {job['name']}@{job['version']}: ",
                         (job["state"], STYLE.get(job["state"], "bold")), eta_text(job))
    table = Table("location", "host", "state", "progress", "rate", "error")
    for h in job["hosts"]:
        pct = 100 * h["bytes_done"] / total
        table.add_row(h["location"], h["host"], Text(h["state"], style=STYLE.get(h["state"], "")),
                      f"{pct:5.1f}%", f"{format_size(h['download_rate'])}/s" if h["download_rate"] else "",
                      h["error"][:60])
    return Group(head, table)


def summary_line(job: dict[str, Any]) -> str:
    """The job in one line, for logs: state, hosts by state, and the share of bytes done."""
    total = (job["total_size"] or 1) * max(1, len(job["hosts"]))
    done = sum(h["bytes_done"] for h in job["hosts"])
    counts: dict[str, int] = {}
    for h in job["hosts"]:
        counts[h["state"]] = counts.get(h["state"], 0) + 1
    by_state = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return (f"job {job['id']} {job['name']}@{job['version']}: {job['state']}; {by_state}; "
            f"{100 * done / total:.0f}% of the bytes")


def watch_job(api: TrackerClient, job_id: int, console: Console, *, timeout: float | None,
              interval: float = 1.0) -> dict[str, Any]:
    started = time.monotonic()
    job = api.deployment(job_id)
    if not console.is_terminal:  # CI logs, systemd, Ansible: a line per change, no redrawn table
        said = ""
        while True:
            line = summary_line(job)
            if line != said:
                console.print(line, soft_wrap=True, highlight=False)
                said = line
            if job["state"] in FINAL or (timeout is not None and time.monotonic() - started >= timeout):
                break
            time.sleep(interval)
            job = api.deployment(job_id)
        console.print(job_view(job))
        return job
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
