"""Deployment jobs in the database: create (idempotent), report, reconcile, cancel, desired state.

The rules live in ``tracker/jobs.py``; this module only loads rows, applies them and saves.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from sqlmodel import Session, col, select

from tracker.jobs import (
    FINAL_JOB_STATES,
    HostState,
    HostView,
    JobState,
    host_after_clock,
    host_after_newer_deployment,
    host_after_report,
    job_state,
)
from tracker.models import (
    Deployment,
    DeploymentCreate,
    DeploymentHost,
    DeploymentHostPublic,
    DeploymentPublic,
    DesiredModel,
    Host,
    Release,
    published,
)
from tracker.peers import Location


def unknown_release(session: Session, name: str, version: str) -> str:
    """The answer to a model version that is not published: what is, of that name or at all."""
    versions = [r.version for r in session.exec(published().where(Release.name == name)
                                                .order_by(col(Release.id))).all()]
    if versions:
        return f"no model {name}@{version} is published; versions of {name}: {', '.join(versions[-10:])}"
    names = sorted({r.name for r in session.exec(published()).all()})
    return (f"no model {name}@{version} is published; models: {', '.join(names[:20])}" if names
            else f"no model {name}@{version} is published; nothing is published yet (`modeltorrent publish`)")


class DeploymentError(Exception):
    """A request that cannot be served, with the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _targets(session: Session, body: DeploymentCreate) -> list[Host]:
    chosen = sum([bool(body.hosts), bool(body.racks), body.all])
    if chosen != 1:
        raise DeploymentError(422, "give exactly one of hosts, racks or all")
    every = session.exec(select(Host).order_by(col(Host.name))).all()
    clients = [h for h in every if h.role == "client" and not h.revoked]
    if body.hosts:
        by_name = {h.name: h for h in clients}
        others = {h.name: h for h in every}
        refused = sorted(set(body.hosts) - set(by_name))
        if refused:
            raise DeploymentError(422, "; ".join(_why_not(name, others.get(name), clients) for name in refused))
        return [by_name[n] for n in dict.fromkeys(body.hosts)]
    if body.racks:
        wanted = set(body.racks)
        picked = [h for h in clients if h.location in wanted or Location.parse(h.location).rack in wanted]
        if not picked:
            raise DeploymentError(422, f"no registered hosts in racks {', '.join(sorted(wanted))}")
        return picked
    if not clients:
        raise DeploymentError(422, "no registered client hosts")
    return clients


def _why_not(name: str, host: Host | None, clients: list[Host]) -> str:
    """Why ``name`` cannot be a deployment's target, and what can."""
    if host is not None and host.role == "seedbox":
        return f"{name} is a seedbox: it seeds what it is started with (`modeltorrent seedbox run`), not deployments"
    if host is not None and host.revoked:
        return f"{name} is revoked"
    known = ", ".join(h.name for h in clients[:10]) + (f" and {len(clients) - 10} more" if len(clients) > 10 else "")
    return f"no host {name} is registered (client hosts: {known or 'none yet'})"


def create(session: Session, body: DeploymentCreate, now: float) -> tuple[Deployment, bool]:
    """The job for ``body`` and whether it is new. Raises DeploymentError."""
    release = session.exec(
        published().where(Release.name == body.name, Release.version == body.version)
    ).first()
    if release is None:
        raise DeploymentError(404, unknown_release(session, body.name, body.version))
    if body.key:
        existing = session.exec(select(Deployment).where(Deployment.key == body.key)).first()
        if existing is not None:
            if existing.release_id != release.id:
                raise DeploymentError(409, f"key {body.key!r} is already used by deployment {existing.id}")
            return existing, False
    hosts = _targets(session, body)
    targets: dict[str, Any] = ({"hosts": body.hosts} if body.hosts else
                               {"racks": body.racks} if body.racks else {"all": True})
    assert release.id is not None
    job = Deployment(key=body.key, release_id=release.id, targets=json.dumps(targets),
                     created_at=now, updated_at=now)
    session.add(job)
    session.flush()
    assert job.id is not None
    for host in hosts:
        assert host.id is not None
        session.add(DeploymentHost(deployment_id=job.id, host_id=host.id, since=now))
    _supersede(session, job, release, [h.id for h in hosts if h.id is not None], now)
    session.commit()
    session.refresh(job)
    return job, True


def _supersede(session: Session, job: Deployment, release: Release, host_ids: list[int], now: float) -> None:
    """Hosts that ``job`` targets leave older open jobs for other versions of the same model
    (their agents follow the newest deployment), so those jobs neither wait for them nor count
    them as stalled."""
    older = session.exec(
        select(Deployment).where(col(Deployment.release_id) == col(Release.id), Release.name == release.name,
                                 col(Deployment.release_id) != release.id, col(Deployment.id) != job.id,
                                 col(Deployment.state).not_in([s.value for s in FINAL_JOB_STATES]))
    ).all()
    for other in older:
        rows = _rows(session, other)
        for row in rows:
            if row.host_id in host_ids:
                new = host_after_newer_deployment(HostState(row.state))
                if new.value != row.state:
                    row.state = new.value
                    row.error = f"superseded by deployment {job.id} ({release.name}@{release.version})"
                    session.add(row)
        session.flush()
        _refresh(session, other, rows, now)


def _refresh(session: Session, job: Deployment, rows: list[DeploymentHost], now: float) -> None:
    state = job_state((HostState(r.state) for r in rows), cancelled=job.cancelled)
    if state.value != job.state:
        job.state = state.value
        job.updated_at = now
        if state in FINAL_JOB_STATES and job.finished_at is None:
            job.finished_at = now
        elif state not in FINAL_JOB_STATES:
            job.finished_at = None
        session.add(job)


def _rows(session: Session, job: Deployment) -> list[DeploymentHost]:
    return list(session.exec(select(DeploymentHost).where(DeploymentHost.deployment_id == job.id)).all())


def record_report(session: Session, host: Host, release: Release, state: str, fields: dict[str, Any],
                  now: float) -> None:
    """Apply a host's status report to every open job that targets it with this release."""
    jobs = session.exec(
        select(Deployment).where(Deployment.release_id == release.id, col(Deployment.cancelled).is_(False))
    ).all()
    for job in jobs:  # a job that ended with dead hosts comes back to life if they do
        row = session.get(DeploymentHost, (job.id, host.id))
        if row is None:
            continue
        row.state = host_after_report(HostState(row.state), state).value
        row.last_report = now
        row.pieces_verified = fields.get("pieces_verified", row.pieces_verified)
        row.bytes_done = fields.get("bytes_done", row.bytes_done)
        # A host that finished (or failed) moves nothing: no rate of its last download lingers.
        row.download_rate = fields.get("download_rate", row.download_rate) if row.state in MOVING else 0.0
        row.error = fields.get("error", row.error)
        session.add(row)
        session.flush()
        _refresh(session, job, _rows(session, job), now)
    session.commit()


def reconcile(session: Session, now: float, stall_timeout: float) -> int:
    """Mark silent hosts stalled and bring job states up to date. Returns the jobs changed."""
    changed = 0
    open_jobs = session.exec(
        select(Deployment).where(col(Deployment.state).not_in([s.value for s in FINAL_JOB_STATES]))
    ).all()
    for job in open_jobs:
        rows = _rows(session, job)
        for row in rows:
            new = host_after_clock(HostView(HostState(row.state), row.last_report, row.since), now, stall_timeout)
            if new.value != row.state:
                row.state = new.value
                if new is HostState.STALLED:
                    row.error = row.error or f"no report for {stall_timeout:.0f}s"
                    row.download_rate = 0.0
                session.add(row)
        before = job.state
        _refresh(session, job, rows, now)
        changed += job.state != before
    session.commit()
    return changed


def cancel(session: Session, job_id: int, now: float) -> Deployment:
    job = session.get(Deployment, job_id)
    if job is None:
        raise DeploymentError(404, f"no deployment {job_id}")
    if not job.cancelled and JobState(job.state) not in FINAL_JOB_STATES:
        job.cancelled = True
        _refresh(session, job, _rows(session, job), now)
        session.commit()
        session.refresh(job)
    return job


def desired(session: Session, host: Host) -> list[DesiredModel]:
    """For each model, the newest uncancelled deployment that targets ``host``."""
    rows = session.exec(
        select(Deployment, Release)
        .where(col(Deployment.id) == col(DeploymentHost.deployment_id), DeploymentHost.host_id == host.id,
               col(Deployment.release_id) == col(Release.id), col(Deployment.cancelled).is_(False))
        .order_by(col(Deployment.id).desc())
    ).all()
    newest: dict[str, DesiredModel] = {}
    for job, release in rows:
        assert job.id is not None
        newest.setdefault(release.name, DesiredModel(deployment_id=job.id, name=release.name,
                                                     version=release.version, state=job.state))
    return list(newest.values())


def public(session: Session, job: Deployment, *, with_hosts: bool) -> DeploymentPublic:
    release = session.get(Release, job.release_id)
    assert release is not None and job.id is not None
    pairs = session.exec(
        select(DeploymentHost, Host).where(DeploymentHost.deployment_id == job.id,
                                           col(DeploymentHost.host_id) == col(Host.id))
        .order_by(col(Host.location), col(Host.name))
    ).all()
    hosts = [DeploymentHostPublic(host=h.name, location=h.location, state=r.state,
                                  pieces_verified=r.pieces_verified, bytes_done=r.bytes_done,
                                  download_rate=r.download_rate, error=r.error, last_report=r.last_report)
             for r, h in pairs]
    now = time.time()
    rate, eta = eta_of(release.total_size, [(h.state, h.bytes_done, h.download_rate if h.last_report is not None
                                             and now - h.last_report <= RATE_FRESH else 0.0) for h in hosts])
    return DeploymentPublic(
        id=job.id, key=job.key, name=release.name, version=release.version, state=job.state,
        targets=json.loads(job.targets), total_size=release.total_size, num_pieces=release.num_pieces,
        hosts_by_state=dict(Counter(h.state for h in hosts)), created_at=job.created_at,
        updated_at=job.updated_at, finished_at=job.finished_at, download_rate=rate, eta_seconds=eta,
        hosts=hosts if with_hosts else None,
    )


MOVING = {HostState.PENDING.value, HostState.DOWNLOADING.value, HostState.VERIFYING.value}
RATE_FRESH = 60.0  # seconds: agents report every second or two; a rate older than this is not counted


def eta_of(total_size: int, hosts: list[tuple[str, int, float]]) -> tuple[float, float | None]:
    """(bytes/s, seconds to go) of a job from its hosts' (state, bytes done, rate): the bytes its
    hosts still on their way need, at the rate they move together now. None: nothing moves (or
    nothing is left). Stalled and failed hosts are not waited for. Pure."""
    going = [(done, rate) for state, done, rate in hosts if state in MOVING]
    rate = sum(r for _, r in going)
    left = sum(max(0, total_size - done) for done, _ in going)
    return rate, (left / rate if rate > 0 and left > 0 else None)
