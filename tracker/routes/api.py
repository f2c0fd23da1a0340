"""The JSON API: hosts, torrents (manifest + .torrent), status reports."""

from __future__ import annotations

import base64
import binascii
import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.responses import PlainTextResponse
from sqlalchemy import or_
from sqlmodel import col, select

from common import peer_certs
from common import torrent as torrents
from common.errors import ModeltorrentError
from common.manifest import Manifest
from common.settings import tracker_urls
from tracker import deployments, revocations
from tracker.deps import AdminDep, DirectoryDep, HostDep, OptionalHostDep, SessionDep, SettingsDep, is_admin
from tracker.models import (
    Host,
    HostCreate,
    HostCreated,
    HostPublic,
    HostStatus,
    PeerCertificate,
    PeerCertificateRequest,
    PeerRevocations,
    Release,
    ReleaseCreate,
    ReleasePublic,
    StatusPublic,
    StatusReport,
    now,
    published,
    stripe_version,
)
from tracker.settings import TrackerSettings

router = APIRouter(prefix="/api")


# -- hosts ------------------------------------------------------------------------------------


@router.post("/hosts", response_model=HostCreated, dependencies=[AdminDep], tags=["hosts"],
             summary="Register a host (idempotent: an existing host keeps its passkey)")
def add_host(body: HostCreate, session: SessionDep, response: Response, directory: DirectoryDep,
             request: Request) -> HostCreated:
    host = session.exec(select(Host).where(Host.name == body.name)).first()
    created = host is None
    if host is None:
        host = Host(name=body.name, location=body.location, role=body.role, passkey=secrets.token_hex(16))
    else:
        host.location, host.role, host.revoked, host.revoked_at = body.location, body.role, False, None
    session.add(host)
    session.commit()
    session.refresh(host)
    directory.invalidate()
    request.app.state.revocations.invalidate()  # registered again: its addresses are let in
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return HostCreated(name=host.name, location=host.location, role=host.role, revoked=host.revoked,
                       passkey=host.passkey, created=created)


@router.get("/hosts", response_model=list[HostPublic], dependencies=[AdminDep], tags=["hosts"])
def list_hosts(session: SessionDep) -> list[Host]:
    return list(session.exec(select(Host).order_by(Host.name)).all())


@router.delete("/hosts/{name}", response_model=HostPublic, dependencies=[AdminDep], tags=["hosts"],
               summary="Revoke a host: its next announce is refused")
def revoke_host(name: str, session: SessionDep, directory: DirectoryDep, request: Request) -> Host:
    host = session.exec(select(Host).where(Host.name == name)).first()
    if host is None:
        raise HTTPException(404, f"no host named {name!r}")
    if not host.revoked:
        host.revoked, host.revoked_at = True, now()
        assert host.id is not None
        revocations.record_announced(session, host.id)  # where peers must refuse it (its certificate lives on)
    session.add(host)
    session.commit()
    session.refresh(host)
    directory.invalidate()
    request.app.state.revocations.invalidate()
    return host


# -- torrents ---------------------------------------------------------------------------------


def _release(session: SessionDep, name: str, version: str) -> Release:
    release = session.exec(
        published().where(Release.name == name, Release.version == version)
    ).first()
    if release is None:
        raise HTTPException(404, deployments.unknown_release(session, name, version))
    return release


def _public(release: Release) -> ReleasePublic:
    return ReleasePublic.model_validate(release, from_attributes=True)


@router.post("/torrents", response_model=ReleasePublic, dependencies=[AdminDep], tags=["torrents"],
             summary="Register a manifest and its torrent (same name@version with other bytes: 409)")
def add_torrent(body: ReleaseCreate, session: SessionDep, response: Response, settings: SettingsDep) -> ReleasePublic:
    try:
        manifest = Manifest.model_validate(body.manifest)
        manifest.verify([manifest.publisher])  # self-consistent; hosts decide whom they trust
        raw = base64.b64decode(body.torrent, validate=True)
        hashes = torrents.check_matches(raw, manifest)
    except binascii.Error as exc:
        raise HTTPException(422, "torrent is not valid base64") from exc
    except (ModeltorrentError, ValueError) as exc:
        raise HTTPException(422, f"refused: {exc}") from exc
    existing = session.exec(
        select(Release).where(Release.name == manifest.name, Release.version == manifest.version)
    ).first()
    if existing is not None:
        known = Manifest.model_validate_json(existing.manifest)
        if known.content_digest() != manifest.content_digest():
            raise HTTPException(
                409, f"{manifest.ref} is already published with other contents; publish a new version"
            )
        response.status_code = status.HTTP_200_OK
        return _public(existing)
    carried, expected = torrents.peer_ca(raw), _peer_ca(settings)
    if expected and carried != expected[0]:
        raise HTTPException(422, "refused: this tracker lets peers talk only to registered hosts, and the torrent "
                            "does not carry its peer CA: publish again with this modeltorrent, which puts it in")
    if carried and not expected:
        raise HTTPException(422, "refused: the torrent carries a peer CA but this tracker has none to give hosts "
                            "certificates from (tracker serve --peer-ca-cert/--peer-ca-key)")
    keys = [h for h in (hashes.v1, hashes.v2_truncated) if h]
    same_bytes = session.exec(select(Release).where(or_(
        col(Release.info_hash_v2).in_(keys), col(Release.info_hash_v1).in_(keys)))).first()
    if same_bytes is not None:  # a torrent without its version in the info dict (an earlier publish)
        raise HTTPException(409, f"this torrent's info hash is {same_bytes.name}@{same_bytes.version}'s: its "
                            "version is not in the torrent; publish again with this modeltorrent, which puts "
                            "it there, or deploy the published version")
    if body.stripes > 1 and hashes.v2 is None:
        raise HTTPException(422, "refused: a v1 torrent cannot be striped (stock clients join one torrent)")
    if body.stripes > len(manifest.pieces):
        raise HTTPException(422, f"refused: {body.stripes} stripes for {len(manifest.pieces)} pieces "
                            "(each stripe needs a piece at least)")
    fields: dict[str, Any] = dict(
        name=manifest.name, root=manifest.root, total_size=manifest.total_size,
        torrent_size=manifest.layout().torrent_size, num_pieces=len(manifest.pieces))
    release = Release(**fields, version=manifest.version, info_hash_v1=hashes.v1,
                      info_hash_v2=hashes.v2_truncated, manifest=manifest.to_json().decode(), torrent=raw,
                      stripes=body.stripes)
    session.add(release)
    session.flush()
    if body.stripes > 1:  # each stripe its own swarm: derived from the torrent checked above
        for k in range(body.stripes):
            derived = torrents.stripe_torrent(raw, k, body.stripes)
            h = torrents.info_hashes(derived)
            session.add(Release(**fields, version=stripe_version(manifest.version, k), info_hash_v1=h.v1,
                                info_hash_v2=h.v2_truncated, manifest="", torrent=derived, stripe_of=release.id,
                                stripe=k))
    session.commit()
    session.refresh(release)
    response.status_code = status.HTTP_201_CREATED
    return _public(release)


@router.get("/torrents", response_model=list[ReleasePublic], tags=["torrents"])
def list_torrents(session: SessionDep, host: OptionalHostDep, request: Request) -> list[ReleasePublic]:
    if host is None and not is_admin(request.app.state.settings, request.headers.get("authorization")):
        raise HTTPException(401, "host passkey or admin token required")
    return [_public(r) for r in session.exec(published().order_by(col(Release.id))).all()]


@router.get("/torrents/{name}/{version}", response_model=ReleasePublic, tags=["torrents"],
            summary="One published version (host passkey or admin token)")
def get_release(name: str, version: str, session: SessionDep, host: OptionalHostDep,
                request: Request) -> ReleasePublic:
    if host is None and not is_admin(request.app.state.settings, request.headers.get("authorization")):
        raise HTTPException(401, "host passkey or admin token required")
    return _public(_release(session, name, version))


@router.get("/torrents/{name}/{version}/manifest", tags=["torrents"],
            summary="The signed manifest (host passkey or admin token)")
def get_manifest(name: str, version: str, session: SessionDep, host: OptionalHostDep,
                 request: Request) -> Response:
    if host is None and not is_admin(request.app.state.settings, request.headers.get("authorization")):
        raise HTTPException(401, "host passkey or admin token required")
    return Response(_release(session, name, version).manifest, media_type="application/json")


@router.get("/torrents/{name}/{version}/torrent", tags=["torrents"],
            summary="The .torrent, announcing with this host's passkey: any BitTorrent client can join")
def get_torrent(name: str, version: str, host: HostDep, session: SessionDep,
                settings: SettingsDep, request: Request) -> Response:
    release = _release(session, name, version)
    bases = tracker_urls(settings.public_url or str(request.base_url))
    body = torrents.with_announce(release.torrent, [f"{base}/announce?passkey={host.passkey}" for base in bases])
    return Response(
        body, media_type="application/x-bittorrent",
        headers={"Content-Disposition": f'attachment; filename="{name}-{version}.torrent"'},
    )


# -- peer certificates (common/peer_certs.py) ------------------------------------------------


def _peer_ca(settings: TrackerSettings) -> tuple[str, str] | None:
    """The peer CA's certificate and key (PEM), or None where peers are not authenticated."""
    if not (settings.peer_ca_cert and settings.peer_ca_key):
        return None
    return Path(settings.peer_ca_cert).read_text(), Path(settings.peer_ca_key).read_text()


@router.get("/peer-ca", tags=["peers"], response_class=PlainTextResponse,
            summary="The peer CA's certificate, which publish puts into torrents (404: peers are not authenticated)")
def get_peer_ca(settings: SettingsDep) -> PlainTextResponse:
    ca = _peer_ca(settings)
    if ca is None:
        raise HTTPException(404, "this tracker does not authenticate peers (no peer CA)")
    return PlainTextResponse(ca[0], media_type="application/x-pem-file")


@router.post("/peer-certificate", response_model=PeerCertificate, tags=["peers"],
             summary="A certificate for this host's key, signed by the peer CA (host passkey; not for a revoked host)")
def post_peer_certificate(body: PeerCertificateRequest, host: HostDep, settings: SettingsDep,
                          session: SessionDep, request: Request) -> PeerCertificate:
    ca = _peer_ca(settings)
    if ca is None:
        raise HTTPException(404, "this tracker does not authenticate peers (no peer CA)")
    try:
        cert = peer_certs.issue(ca[0], ca[1], body.public_key, host.name, settings.peer_cert_hours)
    except ValueError as exc:
        raise HTTPException(422, f"refused: {exc}") from exc
    assert host.id is not None
    revocations.record(session, host.id, request.client.host if request.client else None)
    session.commit()
    return PeerCertificate(certificate=cert, expires=peer_certs.expires(cert))


@router.get("/peer-revocations", response_model=PeerRevocations, tags=["peers"],
            summary="Addresses of revoked hosts whose peer certificates may still be good: refuse them (host passkey)")
def get_peer_revocations(host: HostDep, settings: SettingsDep, session: SessionDep,
                         request: Request) -> PeerRevocations:
    if _peer_ca(settings) is None:
        raise HTTPException(404, "this tracker does not authenticate peers (no peer CA)")
    listing: revocations.Listing = request.app.state.revocations
    return PeerRevocations(addresses=listing.get(session, settings.peer_cert_hours * 3600),
                           poll=settings.peer_revocation_poll)


# -- status reports ---------------------------------------------------------------------------


@router.post("/status", status_code=204, tags=["status"],
             summary="A host agent's progress report for one model version")
def post_status(body: StatusReport, host: HostDep, session: SessionDep) -> Response:
    release = _release(session, body.name, body.version)
    assert host.id is not None and release.id is not None
    row = session.get(HostStatus, (host.id, release.id)) or HostStatus(
        host_id=host.id, release_id=release.id, state=body.state
    )
    for field, value in body.model_dump(exclude={"name", "version"}).items():
        setattr(row, field, value)
    row.updated_at = now()
    session.add(row)
    session.commit()
    deployments.record_report(session, host, release, body.state,
                              body.model_dump(exclude={"name", "version", "state"}), row.updated_at)
    return Response(status_code=204)


@router.get("/status", response_model=list[StatusPublic], tags=["status"],
            summary="Every host's last report (read-only, no token needed)")
def list_status(session: SessionDep, name: str | None = None) -> list[StatusPublic]:
    query = select(HostStatus, Host, Release).where(
        HostStatus.host_id == Host.id, HostStatus.release_id == Release.id
    )
    if name:
        query = query.where(Release.name == name)
    out = []
    for st, host, release in session.exec(query.order_by(Host.name)).all():
        out.append(StatusPublic(
            name=release.name, version=release.version, state=st.state,
            pieces_verified=st.pieces_verified, bytes_done=st.bytes_done,
            bytes_downloaded=st.bytes_downloaded, download_rate=st.download_rate, error=st.error,
            host=host.name, location=host.location, total_size=release.total_size,
            num_pieces=release.num_pieces, updated_at=st.updated_at,
        ))
    return out
