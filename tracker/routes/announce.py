"""``/announce`` and ``/scrape``: extract, call the swarm, write bencode. Never a 500."""

from __future__ import annotations

import logging
import random
import time

from fastapi import APIRouter, Request, Response
from sqlmodel import Session

from tracker import swarm
from tracker.protocol import TrackerError, failure, parse_announce, parse_scrape, scrape_response

log = logging.getLogger("modeltorrent.tracker")
router = APIRouter(tags=["bittorrent"])
_rng = random.SystemRandom()
BENCODE = "text/plain"


def _reply(body: bytes) -> Response:
    return Response(content=body, media_type=BENCODE, headers={"Cache-Control": "no-store"})


@router.get("/announce", summary="BitTorrent announce (BEP 3, 23, 7; private)")
async def announce(request: Request) -> Response:
    # Deliberately not in the thread pool: an announce is a fraction of a millisecond of CPU and
    # (normally) no database access, so it runs on the event loop without the pool's hand-offs.
    metrics = request.app.state.metrics
    started = time.perf_counter()
    result = "ok"
    try:
        req = parse_announce(request.scope["query_string"])
        # The peer's address is the connection's: ip= and X-Forwarded-For are not trusted.
        ip = request.client.host if request.client else "0.0.0.0"
        with Session(request.app.state.engine) as session:
            body = swarm.announce(session, request.app.state.settings, request.app.state.directory,
                                  request.app.state.peers, req, ip, time.time(), _rng)
    except TrackerError as exc:
        result, body = "refused", failure(str(exc))
    except Exception:  # masked: the peer learns nothing of our internals
        log.exception("announce failed")
        result, body = "error", failure("internal tracker error, retry later")
    metrics.announces.labels(result).inc()
    metrics.latency.labels("announce").observe(time.perf_counter() - started)
    return _reply(body)


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
