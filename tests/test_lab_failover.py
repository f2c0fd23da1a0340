"""A failover pair of trackers in the emulated datacenter: two ``tracker serve`` processes, each in
a network namespace of its own, on one PostgreSQL server in a third; agents on every host, one
deployment job, and the tracker every host is using killed -9 mid-deployment.

Needs root, iproute2 and Debian's postgresql: skipped elsewhere with the reason, required under CI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.postgres import PostgresServer
from tests.system import skip_or_fail
from tests.test_lab import SMALL
from tests.test_lab_faults import verify_every_host
from tools.lab.faults import KillTracker
from tools.lab.lab import INTERVAL, PORT_TRACKER, Lab
from tools.lab.netns import NetnsUnavailable

pytestmark = pytest.mark.integration
MiB = 1 << 20


def test_the_tracker_killed_mid_deployment_the_other_of_the_pair_sees_the_job_through(tmp_path: Path) -> None:
    size = 48 * MiB  # about 10 s at the ingress's 50 Mbit/s: the kill at a third falls mid-way
    try:
        lab = Lab(SMALL, tmp_path, trackers=2)
    except NetnsUnavailable as exc:
        skip_or_fail(f"cannot make network namespaces here: {exc}")
    kill = KillTracker(size, host="tracker", fraction=0.3)
    with lab:
        db = lab.fabric.host("db")
        server = PostgresServer(listen=db.ip, wrap=db.argv)
        try:
            lab.db_url = server.new_database()
            result, job = lab.deploy(size, faults=[kill])
            survivor = lab.trackers[1]
            page_status, page = lab.get(survivor, f"http://{survivor.ip}:{PORT_TRACKER}/")
            # What the page shows (it reads these two): the job, and the swarm with its seeders.
            _, jobs = lab.get(survivor, f"http://{survivor.ip}:{PORT_TRACKER}/api/deployments")
            _, overview = lab.get(survivor, f"http://{survivor.ip}:{PORT_TRACKER}/api/overview")
            metrics_status, metrics = lab.get(survivor, f"http://{survivor.ip}:{PORT_TRACKER}/metrics")
            killed_log, survivor_log = lab.procs.log("tracker"), lab.procs.log(survivor.name)
            verify_every_host(tmp_path, [h.name for h in lab.clients])
        finally:
            server.stop()
    print(result.summary(), "killed at", kill.at, "s, hosts had", kill.received)
    assert kill.at is not None, "the first tracker was never killed"
    assert lab.procs.procs["tracker"].returncode is not None
    # Mid-deployment: no host had the model when the tracker went, and each had started.
    assert all(0 < got < size for got in kill.received.values()), kill.received
    # The job finished, every host activated, as the survivor tells it: nothing the hosts reported
    # before the kill (to the first tracker, into the shared database) was lost.
    assert job["state"] == "activated", job
    assert sorted(h["host"] for h in job["hosts"]) == sorted(h.name for h in lab.clients)
    assert all(h["state"] == "activated" for h in job["hosts"]), job["hosts"]
    # The swarm kept its peers: the model was read once from external storage (no host had to
    # start over from the seedbox), and the hosts announced to the survivor after the kill.
    assert result.source_bytes <= size + MiB, result.source_bytes
    announces = {m.group(1): float(m.group(2))
                 for m in re.finditer(r'^modeltorrent_announces_total\{result="(\w+)"\} ([\d.e+]+)$', metrics, re.M)}
    # Before the kill every host announced to the first tracker (the torrents' first tier), so these
    # came after it: at least one from each host (its completion at the least).
    assert announces.get("ok", 0) >= len(lab.clients), f"the survivor took too few announces: {announces}"
    # The page and /metrics work from the survivor, and show the job.
    assert page_status == 200 and "<html" in page
    assert [(j["id"], j["state"]) for j in json.loads(jobs)] == [(job["id"], "activated")], jobs
    swarms = {s["torrent"]: s for s in json.loads(overview)["swarms"]}
    # The seedbox seeds on through the survivor; the agents stopped seeding when the job ended.
    assert swarms["m@1"]["seeders"] >= 1, swarms
    assert metrics_status == 200
    activated = re.search(r'^modeltorrent_deployment_hosts\{[^}]*state="activated"[^}]*\} ([\d.]+)$', metrics, re.M)
    assert activated and float(activated.group(1)) == len(lab.clients), metrics[-3000:]
    assert "Traceback" not in survivor_log, survivor_log[-3000:]
    print(f"killed tracker's log ends:\n{killed_log[-600:]}\nannounce interval {INTERVAL} s")
