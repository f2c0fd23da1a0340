"""Faults during a running deployment, with real processes: the tracker killed and restarted."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from client.store import ModelStore
from tests.conftest import ADMIN, both_databases, publish_model
from tests.test_integration import public_key, start_seedbox, wait_until
from tools.demo.procs import CLI, Procs, start_tracker
from tracker.api_client import TrackerClient

pytestmark = pytest.mark.integration
MiB = 1 << 20
HOSTS = {"a1": "dc1|pod1|ra", "a2": "dc1|pod1|ra", "b1": "dc1|pod1|rb"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return both_databases(request, tmp_path)


def test_a_tracker_killed_mid_deployment_and_restarted_loses_nothing_and_the_job_finishes(
        tmp_path: Path, procs: Procs, publisher_key: Path, db_url: str) -> None:
    url = start_tracker(procs, db_url, ADMIN, interval=2)
    port = urlsplit(url).port
    admin = TrackerClient(url, admin_token=ADMIN)
    size = 12 * MiB
    publish_model(tmp_path, url, publisher_key, {"w.safetensors": size}, piece_size=256 * 1024,
                  source=str(tmp_path / "external-m-1"))
    # A slow seedbox, so that the deployment is still running when the tracker dies.
    start_seedbox(procs, tmp_path, url, admin.add_host("seedbox", "dc1|pod1|rs", "seedbox")["passkey"],
                  extra=("--upload-rate", "1MiB"))
    passkeys = {name: admin.add_host(name, location)["passkey"] for name, location in HOSTS.items()}
    for name, passkey in passkeys.items():
        procs.start(name, [*CLI, "client", "run", "--tracker", url, "--passkey", passkey,
                           "--root", str(tmp_path / "hosts" / name), "--listen", "127.0.0.1:0",
                           "--trust-key", public_key(tmp_path), "--location", HOSTS[name], "--poll-interval", "0.5"],
                    env={"MODELTORRENT_LOG": "INFO"})
    job = admin.deploy("m", "1", all_hosts=True, key="restart")["id"]

    def progress() -> dict[str, int]:
        return {h["host"]: h["bytes_done"] for h in admin.deployment(job)["hosts"]}

    wait_until(lambda: max(progress().values()) > 0, 60, "the download to begin")
    before = progress()
    procs.procs["tracker"].kill()  # kill -9
    procs.procs["tracker"].wait()
    admin.close()  # its pooled connection died with the tracker
    admin = TrackerClient(url, admin_token=ADMIN)
    time.sleep(3)  # agents and libtorrent meet a dead tracker: refused polls, failed announces
    start_tracker(procs, db_url, ADMIN, interval=2, port=port)

    wait_until(lambda: admin.deployment(job)["state"] in ("activated", "partially_failed", "failed"), 180,
               "the job to finish after the restart")
    final = admin.deployment(job)
    assert final["state"] == "activated", final
    assert max(before.values()) < size  # it was killed mid-download
    assert {h["host"]: h["bytes_done"] for h in final["hosts"]} == {name: size for name in HOSTS}
    for name in HOSTS:
        assert ModelStore(tmp_path / "hosts" / name).active_version("m") == "1"
    # No host state lost: same hosts, same places, same passkeys (registering again creates nothing).
    assert {h["name"]: h["location"] for h in admin.list_hosts() if h["role"] == "client"} == HOSTS
    for name, location in HOSTS.items():
        again = admin.add_host(name, location)
        assert again["passkey"] == passkeys[name] and not again["created"]
    for name in HOSTS:
        assert "tracker" in procs.log(name).lower()  # the outage was seen by the agents
    admin.close()
