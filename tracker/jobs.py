"""Deployment jobs as a state machine. Pure: no I/O, the clock is passed in.

A job's hosts each move through::

    pending ──> downloading ──> verifying ──> activated
       │             │              │
       └─────────────┴──────────────┴──> failed     (the agent reported an error)
                                    └──> stalled    (no report for ``stall_timeout`` seconds;
                                                     a later report brings the host back)
       any state but activated ─────────> superseded (a newer deployment of the same model
                                                     targets the host; if that one is cancelled,
                                                     the host's reports bring it back)

and the job's state follows from its hosts' (and from cancel)::

    pending            no host has started
    distributing       some host is downloading (or waiting while others have started)
    verifying          every live host has all bytes; some are still verifying/activating
    activated          every host activated
    partially_failed   every host is done, some activated and some failed or stalled
    failed             every host is done and none activated
    superseded         every host moved on to newer deployments of the model
    cancelled          an operator cancelled it (final)

Superseded hosts are left out of the job's state: a job whose other hosts all activated is activated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class HostState(StrEnum):
    PENDING = "pending"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    ACTIVATED = "activated"
    FAILED = "failed"
    STALLED = "stalled"
    SUPERSEDED = "superseded"


class JobState(StrEnum):
    PENDING = "pending"
    DISTRIBUTING = "distributing"
    VERIFYING = "verifying"
    ACTIVATED = "activated"
    PARTIALLY_FAILED = "partially_failed"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    CANCELLED = "cancelled"


FINAL_JOB_STATES = frozenset({JobState.ACTIVATED, JobState.PARTIALLY_FAILED, JobState.FAILED,
                              JobState.SUPERSEDED, JobState.CANCELLED})
DONE_HOST_STATES = frozenset({HostState.ACTIVATED, HostState.FAILED, HostState.STALLED})

# What an agent's reported state means for its host in a job.
_REPORTED = {
    "starting": HostState.DOWNLOADING,
    "checking": HostState.DOWNLOADING,
    "downloading": HostState.DOWNLOADING,
    "verified": HostState.VERIFYING,
    "activating": HostState.VERIFYING,
    "activated": HostState.ACTIVATED,
    "seeding": HostState.ACTIVATED,
    "failed": HostState.FAILED,
}


@dataclass(frozen=True)
class HostView:
    state: HostState
    last_report: float | None  # when the host last reported on this job's model version
    since: float  # when the host became a target of the job


def host_after_report(current: HostState, reported: str) -> HostState:
    """The host's state after it reports ``reported`` (an agent state name).

    An activated host stays activated (a later "seeding" or "downloading" of the same version
    cannot un-verify it); unknown states leave the host where it is.
    """
    if current is HostState.ACTIVATED:
        return current
    return _REPORTED.get(reported, current)


def host_after_clock(view: HostView, now: float, stall_timeout: float) -> HostState:
    """Mark a host stalled if nothing was heard from it for ``stall_timeout`` seconds."""
    if view.state in (HostState.ACTIVATED, HostState.FAILED, HostState.STALLED, HostState.SUPERSEDED):
        return view.state
    heard = view.last_report if view.last_report is not None else view.since
    return HostState.STALLED if now - heard > stall_timeout else view.state


def host_after_newer_deployment(current: HostState) -> HostState:
    """A newer deployment of the same model now targets the host: what it did in this job ends
    here, unless it already activated."""
    return current if current is HostState.ACTIVATED else HostState.SUPERSEDED


def job_state(hosts: Iterable[HostState], *, cancelled: bool = False) -> JobState:
    """The job's state from its hosts' states."""
    if cancelled:
        return JobState.CANCELLED
    targeted = list(hosts)
    if not targeted:
        return JobState.FAILED  # nothing to deploy to
    states = [s for s in targeted if s is not HostState.SUPERSEDED]
    if not states:
        return JobState.SUPERSEDED
    if all(s is HostState.PENDING for s in states):
        return JobState.PENDING
    if all(s in DONE_HOST_STATES for s in states):
        activated = sum(s is HostState.ACTIVATED for s in states)
        if activated == len(states):
            return JobState.ACTIVATED
        return JobState.PARTIALLY_FAILED if activated else JobState.FAILED
    live = [s for s in states if s not in (HostState.FAILED, HostState.STALLED)]
    if all(s in (HostState.VERIFYING, HostState.ACTIVATED) for s in live):
        return JobState.VERIFYING
    return JobState.DISTRIBUTING
