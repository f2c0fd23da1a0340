"""Deployment jobs: create (idempotent), list, show, cancel; and the agents' desired state."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi import Path as PathParam
from sqlmodel import Session, col, select

from tracker import deployments
from tracker.deployments import DeploymentError
from tracker.deps import AdminDep, DirectoryDep, HostDep, SessionDep
from tracker.models import AgentHello, Deployment, DeploymentCreate, DeploymentPublic, DesiredModel

router = APIRouter(prefix="/api")

# A database id: past 2**63 - 1 the drivers overflow (a 500), so it is refused as a 422 first.
JobId = Annotated[int, PathParam(ge=1, le=2**63 - 1, description="a deployment id")]


def _job(session: Session, job_id: int) -> Deployment:
    job = session.get(Deployment, job_id)
    if job is None:
        raise HTTPException(404, f"no deployment {job_id}")
    return job


@router.post("/deployments", response_model=DeploymentPublic, dependencies=[AdminDep], tags=["deployments"],
             summary="Deploy a model version to hosts, racks or all hosts (same key: same job)")
def create_deployment(body: DeploymentCreate, session: SessionDep, response: Response) -> DeploymentPublic:
    try:
        job, new = deployments.create(session, body, time.time())
    except DeploymentError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    response.status_code = status.HTTP_201_CREATED if new else status.HTTP_200_OK
    return deployments.public(session, job, with_hosts=True)


@router.get("/deployments", response_model=list[DeploymentPublic], tags=["deployments"],
            summary="Every deployment, newest first (read-only, no token needed)")
def list_deployments(session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[DeploymentPublic]:
    jobs = session.exec(select(Deployment).order_by(col(Deployment.id).desc()).limit(limit)).all()
    return [deployments.public(session, job, with_hosts=False) for job in jobs]


@router.get("/deployments/{job_id}", response_model=DeploymentPublic, tags=["deployments"],
            summary="One deployment with per-host progress")
def get_deployment(job_id: JobId, session: SessionDep) -> DeploymentPublic:
    return deployments.public(session, _job(session, job_id), with_hosts=True)


@router.post("/deployments/{job_id}/cancel", response_model=DeploymentPublic, dependencies=[AdminDep],
             tags=["deployments"], summary="Cancel a deployment; agents stop fetching it")
def cancel_deployment(job_id: JobId, session: SessionDep) -> DeploymentPublic:
    try:
        job = deployments.cancel(session, job_id, time.time())
    except DeploymentError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    return deployments.public(session, job, with_hosts=True)


@router.get("/agent/desired", response_model=list[DesiredModel], tags=["agent"],
            summary="What this host should have: per model, the newest deployment targeting it")
def agent_desired(host: HostDep, session: SessionDep) -> list[DesiredModel]:
    return deployments.desired(session, host)


@router.post("/agent/hello", status_code=204, tags=["agent"],
             summary="An agent starting up; it may set its host's location from its own config")
def agent_hello(body: AgentHello, host: HostDep, session: SessionDep, directory: DirectoryDep) -> Response:
    if body.location is not None and body.location != host.location:
        host.location = body.location
        session.add(host)
        session.commit()
        directory.invalidate()
    return Response(status_code=204)
