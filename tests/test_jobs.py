"""The deployment state machine, table by table."""

from __future__ import annotations

import pytest

from tracker.jobs import (
    HostState,
    HostView,
    JobState,
    host_after_clock,
    host_after_newer_deployment,
    host_after_report,
    job_state,
)

H = HostState
J = JobState

REPORTS = [
    ("first report starts the download", H.PENDING, "starting", H.DOWNLOADING),
    ("checking counts as downloading", H.PENDING, "checking", H.DOWNLOADING),
    ("all bytes in: verifying", H.DOWNLOADING, "verified", H.VERIFYING),
    ("activation in progress", H.DOWNLOADING, "activating", H.VERIFYING),
    ("activated", H.VERIFYING, "activated", H.ACTIVATED),
    ("seeding after activation is activated", H.DOWNLOADING, "seeding", H.ACTIVATED),
    ("error", H.DOWNLOADING, "failed", H.FAILED),
    ("a stalled host that reports again comes back", H.STALLED, "downloading", H.DOWNLOADING),
    ("a failed host that retries comes back", H.FAILED, "starting", H.DOWNLOADING),
    ("activated is never undone", H.ACTIVATED, "failed", H.ACTIVATED),
    ("unknown report changes nothing", H.DOWNLOADING, "dancing", H.DOWNLOADING),
    ("back from superseded (the newer job was cancelled)", H.SUPERSEDED, "downloading", H.DOWNLOADING),
]


@pytest.mark.parametrize("current,reported,expected", [r[1:] for r in REPORTS], ids=[r[0] for r in REPORTS])
def test_host_after_report(current: HostState, reported: str, expected: HostState) -> None:
    assert host_after_report(current, reported) is expected


CLOCK = [
    ("recent report", HostView(H.DOWNLOADING, last_report=95.0, since=0.0), H.DOWNLOADING),
    ("silent too long", HostView(H.DOWNLOADING, last_report=80.0, since=0.0), H.STALLED),
    ("never reported, just targeted", HostView(H.PENDING, last_report=None, since=95.0), H.PENDING),
    ("never reported, long ago", HostView(H.PENDING, last_report=None, since=50.0), H.STALLED),
    ("activated hosts never stall", HostView(H.ACTIVATED, last_report=0.0, since=0.0), H.ACTIVATED),
    ("failed stays failed", HostView(H.FAILED, last_report=0.0, since=0.0), H.FAILED),
    ("superseded hosts never stall", HostView(H.SUPERSEDED, last_report=0.0, since=0.0), H.SUPERSEDED),
]


@pytest.mark.parametrize("view,expected", [c[1:] for c in CLOCK], ids=[c[0] for c in CLOCK])
def test_host_after_clock(view: HostView, expected: HostState) -> None:
    assert host_after_clock(view, now=100.0, stall_timeout=10.0) is expected


JOBS = [
    ("nobody started", [H.PENDING, H.PENDING], False, J.PENDING),
    ("one downloading", [H.PENDING, H.DOWNLOADING], False, J.DISTRIBUTING),
    ("one waiting while one verifies", [H.PENDING, H.VERIFYING], False, J.DISTRIBUTING),
    ("all bytes in", [H.VERIFYING, H.ACTIVATED], False, J.VERIFYING),
    ("dead host does not hold verifying back", [H.VERIFYING, H.STALLED], False, J.VERIFYING),
    ("all activated", [H.ACTIVATED, H.ACTIVATED], False, J.ACTIVATED),
    ("some dead, rest activated", [H.ACTIVATED, H.STALLED, H.FAILED], False, J.PARTIALLY_FAILED),
    ("all dead", [H.FAILED, H.STALLED], False, J.FAILED),
    ("still going despite a failure", [H.FAILED, H.DOWNLOADING], False, J.DISTRIBUTING),
    ("cancelled wins", [H.ACTIVATED, H.DOWNLOADING], True, J.CANCELLED),
    ("superseded hosts are left out", [H.ACTIVATED, H.SUPERSEDED], False, J.ACTIVATED),
    ("the rest still downloading", [H.SUPERSEDED, H.DOWNLOADING], False, J.DISTRIBUTING),
    ("every host moved on", [H.SUPERSEDED, H.SUPERSEDED], False, J.SUPERSEDED),
    ("no hosts", [], False, J.FAILED),
]


@pytest.mark.parametrize("hosts,cancelled,expected", [j[1:] for j in JOBS], ids=[j[0] for j in JOBS])
def test_job_state(hosts: list[HostState], cancelled: bool, expected: JobState) -> None:
    assert job_state(hosts, cancelled=cancelled) is expected


@pytest.mark.parametrize("current,expected", [
    (H.PENDING, H.SUPERSEDED), (H.DOWNLOADING, H.SUPERSEDED), (H.VERIFYING, H.SUPERSEDED),
    (H.STALLED, H.SUPERSEDED), (H.FAILED, H.SUPERSEDED), (H.ACTIVATED, H.ACTIVATED),
])
def test_a_newer_deployment_supersedes_all_but_an_activation(current: HostState, expected: HostState) -> None:
    assert host_after_newer_deployment(current) is expected


ETA = [
    # (case, total, hosts (state, bytes done, rate), expected (rate, seconds to go))
    ("nothing moves", 100, [("pending", 0, 0.0)], (0.0, None)),
    ("two hosts at 10 B/s each, 150 B to go", 100, [("downloading", 50, 10.0), ("downloading", 0, 10.0)],
     (20.0, 7.5)),
    ("activated, failed and stalled hosts are not waited for", 100,
     [("activated", 100, 0.0), ("failed", 10, 0.0), ("stalled", 0, 0.0), ("downloading", 80, 5.0)], (5.0, 4.0)),
    ("all done", 100, [("activated", 100, 0.0)], (0.0, None)),
    ("verifying hosts still count", 100, [("verifying", 100, 0.0), ("downloading", 90, 2.0)], (2.0, 5.0)),
]


@pytest.mark.parametrize(("case", "total", "hosts", "expected"), ETA, ids=[c[0] for c in ETA])
def test_a_jobs_time_to_go_is_its_bytes_left_at_its_rate_now(
        case: str, total: int, hosts: list[tuple[str, int, float]], expected: tuple[float, float | None]) -> None:
    from tracker.deployments import eta_of

    assert eta_of(total, hosts) == expected
