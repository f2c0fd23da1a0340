"""Deployment jobs over the real HTTP API: creation, idempotency, targets, reports, stall, cancel."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from common.errors import ApiError
from tests.conftest import ADMIN, both_databases, publish_model
from tools.demo.procs import Procs, start_tracker
from tracker.api_client import TrackerClient


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test here runs against SQLite and against a real PostgreSQL server."""
    return both_databases(request, tmp_path)

@pytest.fixture
def fleet(tmp_path: Path, procs: Procs, publisher_key: Path, db_url: str):  # type: ignore[no-untyped-def]
    url = start_tracker(procs, db_url, ADMIN, interval=2,
                        env={"MODELTORRENT_TRACKER_STALL_TIMEOUT":
                             "2", "MODELTORRENT_TRACKER_RECONCILE_INTERVAL": "0.5"})
    publish_model(tmp_path, url, publisher_key, {"w.bin": 1000})
    admin = TrackerClient(url, admin_token=ADMIN)
    keys = {h: admin.add_host(h, loc)["passkey"] for h, loc in
            [("a1", "dc1|pod1|ra"), ("a2", "dc1|pod1|ra"), ("b1", "dc1|pod1|rb")]}
    admin.add_host("seedbox", "dc1|pod1|rs", "seedbox")
    clients = {h: TrackerClient(url, passkey=k) for h, k in keys.items()}
    yield {"url": url, "admin": admin, "keys": keys, "clients": clients}
    for client in [admin, *clients.values()]:
        client.close()


def host(fleet: dict, name: str) -> TrackerClient:
    return fleet["clients"][name]


def report(fleet: dict, name: str, state: str, done: int = 0) -> None:
    host(fleet, name).report(name="m", version="1", state=state, bytes_done=done)


def test_targets_resolve_to_hosts_racks_or_everyone_but_the_seedbox(fleet: dict) -> None:
    admin = fleet["admin"]
    assert [h["host"] for h in admin.deploy("m", "1", racks=["ra"])["hosts"]] == ["a1", "a2"]
    assert [h["host"] for h in admin.deploy("m", "1", racks=["dc1|pod1|rb"])["hosts"]] == ["b1"]
    assert sorted(h["host"] for h in admin.deploy("m", "1", all_hosts=True)["hosts"]) == ["a1", "a2", "b1"]
    assert [h["host"] for h in admin.deploy("m", "1", hosts=["b1", "a1"])["hosts"]] == ["a1", "b1"]


@pytest.mark.parametrize("kwargs,status,message", [
    ({"hosts": ["nope"]}, 422, r"no host nope is registered \(client hosts: a1, a2, b1\)"),
    ({"hosts": ["seedbox"]}, 422, "seedbox is a seedbox: it seeds what it is started with"),
    ({"racks": ["rz"]}, 422, "no registered hosts in racks rz"),
    ({}, 422, "exactly one of"),
    ({"hosts": ["a1"], "all_hosts": True}, 422, "exactly one of"),
])
def test_bad_targets_are_refused_clearly(fleet: dict, kwargs: dict, status: int, message: str) -> None:
    with pytest.raises(ApiError, match=message) as info:
        fleet["admin"].deploy("m", "1", **kwargs)
    assert info.value.status == status


def test_unknown_model_is_404_and_admin_token_is_required(fleet: dict) -> None:
    with pytest.raises(ApiError, match="no model m@9 is published; versions of m: 1") as info:
        fleet["admin"].deploy("m", "9", all_hosts=True)
    assert info.value.status == 404
    with pytest.raises(ApiError, match="no model x@1 is published; models: m"):
        fleet["admin"].deploy("x", "1", all_hosts=True)
    r = httpx.post(f"{fleet['url']}/api/deployments", json={"name": "m", "version": "1", "all": True})
    assert r.status_code == 401


def test_the_same_key_returns_the_same_job(fleet: dict) -> None:
    first = fleet["admin"].deploy("m", "1", all_hosts=True, key="rollout-42")
    again = fleet["admin"].deploy("m", "1", hosts=["a1"], key="rollout-42")
    assert again["id"] == first["id"] and len(again["hosts"]) == 3
    assert fleet["admin"].deploy("m", "1", all_hosts=True, key="other")["id"] != first["id"]


def test_reports_move_the_job_and_a_silent_host_is_stalled_and_named(fleet: dict) -> None:
    admin = fleet["admin"]
    job = admin.deploy("m", "1", all_hosts=True)
    assert job["state"] == "pending"
    assert [d["name"] for d in host(fleet, "a1").desired()] == ["m"]
    report(fleet, "a1", "downloading", 500)
    assert admin.deployment(job["id"])["state"] == "distributing"
    report(fleet, "a1", "activated", 1000)
    report(fleet, "a2", "verified", 1000)
    deadline = time.monotonic() + 20
    while admin.deployment(job["id"])["state"] != "verifying" and time.monotonic() < deadline:
        report(fleet, "a2", "verified", 1000)  # a2 keeps reporting; b1 never does and stalls
        time.sleep(0.3)
    shown = admin.deployment(job["id"])
    assert shown["state"] == "verifying"
    assert {h["host"]: h["state"] for h in shown["hosts"]} == {"a1": "activated", "a2": "verifying", "b1": "stalled"}
    report(fleet, "a2", "activated", 1000)
    done = admin.deployment(job["id"])
    assert done["state"] == "partially_failed" and done["finished_at"] is not None
    assert [h["error"] for h in done["hosts"] if h["host"] == "b1"] == ["no report for 2s"]
    report(fleet, "b1", "seeding", 1000)  # the dead host comes back: the job completes
    assert admin.deployment(job["id"])["state"] == "activated"


def test_a_host_that_finished_shows_no_rate_and_the_job_has_a_time_to_go(fleet: dict) -> None:
    admin = fleet["admin"]
    job = admin.deploy("m", "1", all_hosts=True)
    for name, done in (("a1", 400), ("a2", 800)):
        host(fleet, name).report(name="m", version="1", state="downloading", bytes_done=done, download_rate=100.0)
    shown = admin.deployment(job["id"])
    # 1000-byte model: a1 600 and a2 200 to go, b1 (pending, no rate) 1000, at 200 B/s together
    assert shown["download_rate"] == 200.0 and shown["eta_seconds"] == pytest.approx(1800 / 200)
    host(fleet, "a2").report(name="m", version="1", state="activated", bytes_done=1000)  # no rate sent
    rates = {h["host"]: h["download_rate"] for h in admin.deployment(job["id"])["hosts"]}
    assert rates == {"a1": 100.0, "a2": 0.0, "b1": 0.0}


def test_cancel_ends_the_job_and_takes_it_off_the_hosts_desired_list(fleet: dict) -> None:
    admin = fleet["admin"]
    job = admin.deploy("m", "1", hosts=["a1"])
    assert host(fleet, "a1").desired()[0]["deployment_id"] == job["id"]
    assert admin.cancel(job["id"])["state"] == "cancelled"
    assert host(fleet, "a1").desired() == []
    report(fleet, "a1", "activated", 1000)
    assert admin.deployment(job["id"])["state"] == "cancelled"


def test_the_newest_deployment_of_a_model_is_the_desired_one(fleet: dict, tmp_path: Path, publisher_key: Path) -> None:
    publish_model(tmp_path / "v2", fleet["url"], publisher_key, {"w.bin": 2000}, version="2", seed=3)
    fleet["admin"].deploy("m", "1", hosts=["a1"])
    newer = fleet["admin"].deploy("m", "2", hosts=["a1"])
    assert [(d["version"], d["deployment_id"]) for d in host(fleet, "a1").desired()] == [("2", newer["id"])]


def test_a_newer_deployment_of_the_model_supersedes_the_hosts_in_the_older_job(
        fleet: dict, tmp_path: Path, publisher_key: Path) -> None:
    publish_model(tmp_path / "v2", fleet["url"], publisher_key, {"w.bin": 2000}, version="2", seed=3)
    admin = fleet["admin"]
    older = admin.deploy("m", "1", hosts=["a1", "a2"])
    report(fleet, "a1", "downloading", 500)
    report(fleet, "a2", "activated", 1000)
    newer = admin.deploy("m", "2", hosts=["a1", "a2"])
    job = admin.deployment(older["id"])
    states = {h["host"]: h["state"] for h in job["hosts"]}
    # a1 moved on before finishing: superseded, not stalled; a2 had activated: that stays.
    assert states == {"a1": "superseded", "a2": "activated"} and job["state"] == "activated"
    assert f"superseded by deployment {newer['id']}" in {h["host"]: h for h in job["hosts"]}["a1"]["error"]
    time.sleep(3)  # past the stall timeout: the reconcile loop leaves superseded hosts alone
    assert {h["host"]: h["state"] for h in admin.deployment(older["id"])["hosts"]}["a1"] == "superseded"
    only = admin.deploy("m", "1", hosts=["b1"])
    admin.deploy("m", "2", hosts=["b1"])
    assert admin.deployment(only["id"])["state"] == "superseded"


def test_hello_sets_the_location_from_the_agent_config(fleet: dict) -> None:
    host(fleet, "a1").hello("dc9|pod9|r9")
    hosts = {h["name"]: h for h in fleet["admin"].list_hosts()}
    assert hosts["a1"]["location"] == "dc9|pod9|r9"
    host(fleet, "a2").hello(None)
    assert {h["name"]: h for h in fleet["admin"].list_hosts()}["a2"]["location"] == "dc1|pod1|ra"


def test_metrics_show_hosts_by_state_per_deployment(fleet: dict) -> None:
    job = fleet["admin"].deploy("m", "1", all_hosts=True)
    report(fleet, "a1", "activated", 1000)
    text = httpx.get(f"{fleet['url']}/metrics").text
    assert f'modeltorrent_deployment_hosts{{deployment="{job["id"]}",model="m@1",state="activated"}} 1.0' in text
    assert f'modeltorrent_deployment_hosts{{deployment="{job["id"]}",model="m@1",state="pending"}} 2.0' in text
    assert f'modeltorrent_deployment_bytes_done{{deployment="{job["id"]}",model="m@1"}} 1000.0' in text
    assert 'modeltorrent_reported_bytes{kind="verified",torrent="m@1"} 1000.0' in text


def test_the_grafana_dashboard_only_uses_metrics_the_tracker_exports(fleet: dict) -> None:
    import json
    import re

    dashboard = json.loads((Path(__file__).parent.parent / "tracker" / "grafana-dashboard.json").read_text())
    job = fleet["admin"].deploy("m", "1", all_hosts=True)
    report(fleet, "a1", "downloading", 10)
    httpx.get(f"{fleet['url']}/announce?passkey=x")  # so the request histogram has a sample
    exported = set(re.findall(r"^(modeltorrent_\w+?)(?:_total|_bucket|_count|_sum|_created)?[{ ]",
                              httpx.get(f"{fleet['url']}/metrics").text, re.M))
    used = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"modeltorrent_\w+", t["expr"])}
    used = {re.sub(r"_(total|bucket)$", "", m) for m in used}
    assert used and used <= exported, used - exported
    assert job["id"]
