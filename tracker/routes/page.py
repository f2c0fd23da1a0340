"""The swarm-health page at ``/`` and the read-only overview it polls."""

from __future__ import annotations

import time
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import col, select

from tracker import throughput
from tracker.deps import SessionDep, SettingsDep
from tracker.models import Host, HostStatus, OverviewPublic, Release, SeedboxPublic, SwarmPublic, published
from tracker.swarm import swarm_counts

router = APIRouter()


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    html = resources.files("tracker").joinpath("static/index.html").read_text()
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get("/api/overview", response_model=OverviewPublic, tags=["page"],
            summary="Swarms, seedbox ingress and throughput (read-only, no token needed)")
def overview(session: SessionDep, settings: SettingsDep, request: Request) -> OverviewPublic:
    request.app.state.peers.flush()
    now = time.time()
    swarms = []
    for release in session.exec(published().order_by(col(Release.id))).all():
        seeders, leechers = swarm_counts(session, release.id, now)
        swarms.append(SwarmPublic(torrent=f"{release.name}@{release.version}", seeders=seeders, leechers=leechers))
    seedboxes = []
    rows = session.exec(
        select(HostStatus, Host, Release)
        .where(col(HostStatus.host_id) == col(Host.id), col(HostStatus.release_id) == col(Release.id),
               col(Host.role) == "seedbox")
    ).all()
    for st, host, release in rows:
        seedboxes.append(SeedboxPublic(host=host.name, torrent=f"{release.name}@{release.version}",
                                       state=st.state, bytes_done=st.bytes_done,
                                       bytes_read=st.bytes_downloaded, total_size=release.total_size,
                                       error=st.error))
    rate, reporting = throughput.current(session, now)
    return OverviewPublic(time=now, swarms=swarms, seedboxes=seedboxes, download_rate=rate,
                          hosts_reporting=reporting, history=throughput.history(session, now))
