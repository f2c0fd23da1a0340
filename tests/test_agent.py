"""Agents on three hosts follow deployments: roll out, survive a dead host, stop on cancel."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from client.store import ModelStore
from tests.conftest import ADMIN, publish_model
from tests.test_integration import public_key, start_seedbox, wait_until
from tools.demo.procs import CLI, REPO, Procs, free_port, start_tracker
from tracker.api_client import TrackerClient

pytestmark = pytest.mark.integration
MiB = 1 << 20


def cli(url: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(REPO), "MODELTORRENT_ADMIN_TOKEN": ADMIN, "MODELTORRENT_TRACKER_URL": url,
                        "COLUMNS": "160"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env)


def test_agents_roll_out_a_deployment_and_name_the_host_that_never_came(
        tmp_path: Path, procs: Procs, publisher_key: Path) -> None:
    url = start_tracker(procs, tmp_path / "t.db", ADMIN, interval=2,
                        env={"MODELTORRENT_TRACKER_STALL_TIMEOUT":
                             "8", "MODELTORRENT_TRACKER_RECONCILE_INTERVAL": "0.5"})
    admin = TrackerClient(url, admin_token=ADMIN)
    publish_model(tmp_path, url, publisher_key, {"w.safetensors": 3 * MiB, "config.json": 100},
                  piece_size=256 * 1024, source=str(tmp_path / "external-m-1"))
    publish_model(tmp_path, url, publisher_key, {"w.safetensors": 12 * MiB, "config.json": 100}, version="2",
                  piece_size=256 * 1024, source=str(tmp_path / "external-m-2"), seed=2)
    start_seedbox(procs, tmp_path, url, admin.add_host("seedbox", "dc1|pod1|rs", "seedbox")["passkey"])
    start_seedbox_v2 = [*CLI, "seedbox", "run", "m@2", "--tracker", url, "--passkey",
                        admin.add_host("seedbox2", "dc1|pod1|rs", "seedbox")["passkey"],
                        "--workdir", str(tmp_path / "seedbox2"), "--listen", "127.0.0.1:0",
                        "--trust-key", public_key(tmp_path), "--upload-rate", "1MiB"]
    procs.start("seedbox2", start_seedbox_v2)
    live = {"a1": "dc1|pod1|ra", "a2": "dc1|pod1|ra", "b1": "dc1|pod1|rb"}
    a1_metrics = f"127.0.0.1:{free_port()}"
    for name, location in live.items():
        passkey = admin.add_host(name)["passkey"]  # no location at registration: the agent sets it
        procs.start(name, [*CLI, "client", "run", "--tracker", url, "--passkey", passkey,
                           "--root", str(tmp_path / "hosts" / name), "--listen", "127.0.0.1:0",
                           "--trust-key", public_key(tmp_path), "--location", location,
                           "--poll-interval", "0.5",
                           *(["--metrics-listen", a1_metrics] if name == "a1" else [])],
                    env={"MODELTORRENT_LOG": "INFO"})
    admin.add_host("dead", "dc1|pod1|rb")  # registered, but its agent never runs
    wait_until(lambda: {h["name"]: h["location"] for h in admin.list_hosts()}["b1"] == "dc1|pod1|rb", 30,
               "agents to say hello with their location")

    rollout = cli(url, "deploy", "m@1", "--all", "--key", "rollout-1", "--wait", "--timeout", "120")
    assert rollout.returncode == 1, rollout.stdout + rollout.stderr
    assert "is partially_failed; not activated: dead (stalled" in rollout.stdout
    # not a terminal: a line per change of the job, none left unterminated
    assert rollout.stdout.endswith("\n") and "\x1b[" not in rollout.stdout
    assert re.search(r"^job \d+ m@1: partially_failed; 3 activated, 1 stalled; 75% of the bytes$", rollout.stdout,
                     re.M), rollout.stdout
    for name in live:
        store = ModelStore(tmp_path / "hosts" / name)
        assert store.active_version("m") == "1"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(httpx.get(f"http://{a1_metrics}/metrics").text)
               for s in family.samples}
    v1 = (("model", "m"), ("version", "1"))
    assert samples[("modeltorrent_client_bytes_done", v1)] == 3 * MiB + 100
    assert samples[("modeltorrent_client_pieces_verified_total", v1)] == 13
    assert samples[("modeltorrent_client_hash_failures_total", v1)] == 0
    states = {st: samples[("modeltorrent_client_state", tuple(sorted((*v1, ("state", st)))))]
              for st in ("activated", "seeding", "failed")}
    assert states["activated"] + states["seeding"] == 1 and states["failed"] == 0
    job_id = admin.deployments()[0]["id"]
    again = cli(url, "deploy", "m@1", "--all", "--key", "rollout-1")
    assert again.returncode == 0 and f"job {job_id}:" in again.stdout  # same key, same job
    shown = cli(url, "status", str(job_id))
    assert shown.returncode == 0 and "stalled" in shown.stdout and "dc1|pod1|ra" in shown.stdout
    listing = cli(url, "status")
    assert "3/4 activated" in listing.stdout

    # v2 crawls (the seedbox is capped at 1 MiB/s): cancel it half way; v1 stays active on a1
    job2 = admin.deploy("m", "2", hosts=["a1"])
    wait_until(lambda: any(h["bytes_done"] > 0 for h in admin.deployment(job2["id"])["hosts"]), 60,
               "a1 to start on v2")
    cancelled = cli(url, "status", str(job2["id"]), "--cancel")
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    store = ModelStore(tmp_path / "hosts" / "a1")
    time.sleep(3)
    assert store.active_version("m") == "1"
    assert not store.version_dir("m", "2").exists()
    assert admin.deployment(job2["id"])["state"] == "cancelled"
    wait_until(lambda: "stopped fetching m@2" in procs.log("a1"), 15, "a1's agent to stop fetching v2")
    assert store.staging("m", "2").exists()  # kept, so a later deployment of v2 resumes
    # services log a ready line and their key events at INFO without being asked to
    seedbox_log = procs.log("seedbox")
    assert "seedbox ready: m@1" in seedbox_log and "m@1: seeding, every piece on disk" in seedbox_log
    assert "agent ready: store" in procs.log("a1") and "activated m@1" in procs.log("a1")
    admin.close()
