"""``modeltorrent seedbox run``: fetch the manifest and torrent, then ingest and seed."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from dataclasses import asdict

from common import torrent as torrents
from common.errors import ApiError, SourceError
from common.metrics_http import serve_metrics
from common.milestones import Milestones
from common.peer_identity import PeerIdentity
from common.ratelimit import TokenBucket
from seedbox.limits import CappedSource
from seedbox.metrics import SeedboxCollector
from seedbox.seeder import IngressStats, Seeder
from seedbox.settings import SeedboxSettings
from seedbox.sources import Source, open_source
from tracker.api_client import BackgroundReporter, TrackerClient, patiently

log = logging.getLogger("modeltorrent.seedbox")


def _redacted(uri: str) -> str:
    """A source URI fit for a log: no user or password (an HTTP source may carry them)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password or parts.username:
        parts = parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else ""))
    return urlunsplit(parts)


def run(settings: SeedboxSettings, name: str, version: str, source_uri: str | None = None) -> None:
    """Seed ``name@version`` until SIGINT/SIGTERM. Raises ModeltorrentError subclasses."""
    api = TrackerClient(settings.tracker_url, passkey=settings.passkey.get_secret_value())
    # (Re)started while the tracker restarts: wait for it a while rather than exit.
    manifest = patiently(lambda: api.manifest(name, version), settings.tracker_wait)
    # The seedbox trusts the publishers it is told to, and by default the one that signed.
    layout = manifest.verify(settings.trusted_keys or [manifest.publisher])
    torrent = patiently(lambda: api.torrent(name, version), settings.tracker_wait)
    torrents.check_matches(torrent, manifest)
    uri = source_uri or manifest.source
    if not uri:
        raise SourceError(f"{manifest.ref} has no source", hint="pass --source URI")
    source: Source = open_source(uri, settings.source_timeout)
    if settings.ingress_rate:
        source = CappedSource(source, TokenBucket(settings.ingress_rate))
    def swarm_holds() -> bool:
        try:
            return any(s["version"] == version and s["pieces_verified"] > 0 for s in api.status(name))
        except ApiError:
            return True  # cannot tell: wait for the swarm as if it did

    stripes = int(patiently(lambda: api.release(name, version), settings.tracker_wait).get("stripes", 1))
    identity = (PeerIdentity(settings.workdir / "peer", api.peer_certificate, api.peer_revocations)
                if torrents.peer_ca(torrent) else None)  # an SSL torrent: peers must show a certificate
    seeder = Seeder(settings, manifest, layout, torrent, source, swarm_holds, stripes, identity)
    if settings.metrics_listen:
        serve_metrics(settings.metrics_listen,
                      SeedboxCollector(manifest.ref, seeder.stats, lambda: source.bytes_read, manifest.total_size))
    reporter = BackgroundReporter(api, settings.status_interval)
    status_file = settings.workdir / "status" / f"{name}@{version}.json"
    status_file.parent.mkdir(parents=True, exist_ok=True)
    progress = Milestones(manifest.total_size)
    said_state = [""]

    def on_tick(stats: IngressStats) -> None:
        if stats.state != said_state[0]:
            said_state[0] = stats.state
            if stats.state == "seeding":
                log.info("%s: seeding, every piece on disk (read %.2fx the model from the source)", manifest.ref,
                         source.bytes_read / max(1, manifest.total_size))
            elif stats.state == "failed":
                log.error("%s: failed: %s", manifest.ref, stats.error)
            else:
                log.info("%s: %s", manifest.ref, stats.state)
        if stats.state == "ingesting" and (step := progress.passed(stats.bytes_done)) is not None:
            log.info("%s: %d%% on disk (%d of %d pieces)", manifest.ref, step, stats.pieces_done,
                     len(manifest.pieces))
        doc = asdict(stats) | {"bytes_read_from_source": source.bytes_read,
                               "total_size": manifest.total_size}
        tmp = status_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, status_file)
        reporter.submit(name=name, version=version, state=stats.state,
                        pieces_verified=stats.pieces_done, bytes_done=stats.bytes_done,
                        bytes_downloaded=source.bytes_read, error=stats.error)

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        seeder.stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    log.info("seedbox ready: %s (%d pieces, %d bytes%s) from %s, listening on %s, workdir %s", manifest.ref,
             len(manifest.pieces), manifest.total_size, f", {stripes} stripes" if stripes > 1 else "",
             _redacted(uri), settings.listen, settings.workdir)
    try:
        seeder.run(on_tick)
    finally:
        reporter.close()
        source.close()
        api.close()
