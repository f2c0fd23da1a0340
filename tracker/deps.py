"""FastAPI dependencies: database session, admin token, host passkey."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Query, Request
from sqlmodel import Session, select

from tracker.db import API_SESSIONS
from tracker.models import Host
from tracker.settings import TrackerSettings


def get_session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


def get_settings(request: Request) -> TrackerSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_directory(request: Request) -> Any:
    return request.app.state.directory


# At most API_SESSIONS requests hold a session at once; the rest wait without a worker thread. A
# request's dependencies and route run as separate calls into anyio's 40 worker threads, and a
# session keeps its connection between them: with more requests than connections, every thread
# could wait in the pool for a connection held by a request that waits for a thread. Seen in the
# lab (20 hosts x 10 stripes) and in tests/test_tracker_pool.py: no answer, then "QueuePool limit
# ... reached" after 30 s. Closed when the route returns, before the response is sent.
SessionDep = Annotated[Session, Depends(get_session, scope="function", max_concurrency=API_SESSIONS)]
# The announce path's in-process cache of hosts and releases: writes through this worker drop it.
DirectoryDep = Annotated[Any, Depends(get_directory)]
SettingsDep = Annotated[TrackerSettings, Depends(get_settings)]


def is_admin(settings: TrackerSettings, authorization: str | None) -> bool:
    if not authorization or not authorization.startswith("Bearer "):
        return False
    token = authorization.removeprefix("Bearer ").encode()
    return hmac.compare_digest(token, settings.admin_token.get_secret_value().encode())


def require_admin(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    if not is_admin(settings, authorization):
        raise HTTPException(401, "admin token required: send `Authorization: Bearer <token>`")


def optional_host(
    session: SessionDep,
    x_passkey: Annotated[str | None, Header()] = None,
    passkey: Annotated[str | None, Query(description="host passkey, if not sent as X-Passkey")] = None,
) -> Host | None:
    key = x_passkey or passkey
    if not key:
        return None
    host = session.exec(select(Host).where(Host.passkey == key)).first()
    if host is None or host.revoked:
        raise HTTPException(401, "unknown or revoked passkey")
    return host


def require_host(host: Annotated[Host | None, Depends(optional_host)]) -> Host:
    if host is None:
        raise HTTPException(401, "host passkey required: send `X-Passkey: <passkey>`")
    return host


AdminDep = Depends(require_admin)
HostDep = Annotated[Host, Depends(require_host)]
OptionalHostDep = Annotated[Host | None, Depends(optional_host)]
