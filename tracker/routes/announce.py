"""``/announce`` and ``/scrape``: extract, call the swarm, write bencode. Never a 500."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlmodel import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from tracker import swarm
from tracker.protocol import TrackerError, failure, parse_announce, parse_scrape, scrape_response

log = logging.getLogger("modeltorrent.tracker")
router = APIRouter(tags=["bittorrent"])
# Peer lists and jitter need spread, not secrecy: SystemRandom would cost a syscall per draw.
_rng = random.Random()
BENCODE = "text/plain"


def _reply(body: bytes) -> Response:
    return Response(content=body, media_type=BENCODE, headers={"Cache-Control": "no-store"})


def handle_announce(state: Any, query_string: bytes, ip: str, user_agent: str = "") -> bytes:
    """The whole announce: parse, record, answer, count. Always a bencoded body, never an exception.
    ``user_agent`` tells our clients from stock ones, which re-announce at their own pace."""
    started = time.perf_counter()
    metrics = state.metrics
    try:
        req = parse_announce(query_string)
        body = swarm.announce(state.settings, state.directory, state.peers, state.indexes, req, ip, time.time(), _rng,
                              user_agent=user_agent)
        metrics.announce_ok.inc()
    except TrackerError as exc:
        body = failure(str(exc))
        metrics.announce_refused.inc()
    except Exception:  # masked: the peer learns nothing of our internals
        log.exception("announce failed")
        body = failure("internal tracker error, retry later")
        metrics.announce_error.inc()
    metrics.announce_latency.observe(time.perf_counter() - started)
    return body


class AnnounceFastPath:
    """ASGI wrapper around the app that answers ``GET /announce`` itself, ahead of FastAPI's
    middleware, routing, request and response objects: announces are nearly all of a tracker's
    traffic, and that machinery costs more than the announce. Everything else passes through.

    Runs on the event loop, not the thread pool: an announce is a fraction of a millisecond of CPU
    and (normally) no database access. The peer's address is the connection's: ``ip=`` and
    ``X-Forwarded-For`` are not trusted.
    """

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state  # the FastAPI app's state: settings, directory, peer store, indexes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/announce" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        agent = next((v for k, v in scope["headers"] if k == b"user-agent"), b"").decode("latin-1")
        body = handle_announce(self.state, scope["query_string"], client[0] if client else "0.0.0.0", agent)
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"), (b"cache-control", b"no-store"),
            (b"content-length", str(len(body)).encode()),
        ]})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


@router.get("/announce", summary="BitTorrent announce (BEP 3, 23, 7; private)")
async def announce(request: Request) -> Response:
    # A served tracker answers announces in AnnounceFastPath; this route documents them in the
    # OpenAPI schema and answers the same way where the app runs unwrapped (in-process tests).
    ip = request.client.host if request.client else "0.0.0.0"
    return _reply(handle_announce(request.app.state, request.scope["query_string"], ip,
                                  request.headers.get("user-agent", "")))


@router.get("/scrape", summary="BitTorrent scrape (BEP 48; private: passkey required)")
def scrape(request: Request) -> Response:
    try:
        passkey, hashes = parse_scrape(request.scope["query_string"])
        request.app.state.peers.flush()  # scrape counts from the database: make it current
        with Session(request.app.state.engine) as session:
            entries = swarm.scrape(session, request.app.state.settings, passkey, hashes, time.time())
        body = scrape_response(entries)
    except TrackerError as exc:
        body = failure(str(exc))
    except Exception:
        log.exception("scrape failed")
        body = failure("internal tracker error, retry later")
    return _reply(body)
