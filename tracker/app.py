"""``create_app(settings)``: the tracker's FastAPI application, built at start-up, not import."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tracker.db import make_engine
from tracker.metrics import TrackerMetrics
from tracker.routes import announce, api
from tracker.settings import TrackerSettings


def create_app(settings: TrackerSettings) -> FastAPI:
    app = FastAPI(
        title="modeltorrent tracker",
        summary="Private BitTorrent tracker and control plane for model distribution",
        version="0.1.0",
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings.database_url)
    app.state.metrics = TrackerMetrics(app.state.engine, settings)
    app.include_router(announce.router)
    app.include_router(api.router)

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        return Response(generate_latest(request.app.state.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
