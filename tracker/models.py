"""Database tables (SQLModel) and the JSON shapes of the admin API."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import BigInteger, Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from common.torrent import MAX_STRIPES


def now() -> float:
    return time.time()


# -- tables ----------------------------------------------------------------------------------


class Host(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True)
    location: str = ""  # dc|pod|rack
    role: str = "client"  # client | seedbox
    passkey: str = Field(index=True, unique=True)
    revoked: bool = False
    created_at: float = Field(default_factory=now)
    revoked_at: float | None = None  # peers refuse its addresses for peer_cert_hours after (tracker/revocations.py)


class Release(SQLModel, table=True):
    """One model version: its signed manifest and its torrent."""

    __table_args__ = (UniqueConstraint("name", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: str
    root: str
    total_size: int = Field(sa_type=BigInteger)
    # What BitTorrent clients count as the torrent's size, and so report in ``left`` at the start:
    # file data with the padding to piece boundaries (total_size + padding).
    torrent_size: int = Field(default=0, sa_type=BigInteger)
    num_pieces: int
    # Peers of a hybrid torrent announce under both hashes; both lead to this one swarm.
    info_hash_v1: str | None = Field(default=None, index=True, unique=True)  # 40 hex; None: a v2-only torrent
    # 40 hex: SHA-256 truncated to 20 bytes; None: a v1-only torrent
    info_hash_v2: str | None = Field(default=None, index=True, unique=True)
    manifest: str = Field(sa_column=Column(Text, nullable=False))  # empty for a stripe (its release's)
    torrent: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: float = Field(default_factory=now)
    # A striped release (common/torrent.py, stripe_torrent) has ``stripes`` > 1 and one row more per
    # stripe: ``stripe_of`` its release, ``stripe`` its index, its own info hashes and swarm, and
    # the version ``<version>#stripe-<k>`` (no published version holds a ``#``). Listings skip them.
    stripes: int = 1
    stripe_of: int | None = Field(default=None, foreign_key="release.id", index=True)
    stripe: int = 0


class Peer(SQLModel, table=True):
    release_id: int = Field(foreign_key="release.id", primary_key=True)
    peer_id: str = Field(primary_key=True)  # 40 hex
    host_id: int = Field(foreign_key="host.id", index=True)
    first_seen: float = Field(default_factory=now)
    ip: str
    port: int
    left: int = Field(sa_type=BigInteger)
    uploaded: int = Field(default=0, sa_type=BigInteger)
    downloaded: int = Field(default=0, sa_type=BigInteger)
    last_seen: float = Field(default_factory=now, index=True)
    expires: float = Field(default=0.0, index=True)  # leaves the swarm then, unless it announces again


class PeerAddress(SQLModel, table=True):
    """An address a host was seen at as a peer: where it asked for a peer certificate, and where it
    announced from when it was revoked. Peers refuse a revoked host's addresses (tracker/revocations.py)."""

    host_id: int = Field(foreign_key="host.id", primary_key=True)
    ip: str = Field(primary_key=True)
    seen_at: float = Field(default_factory=now)


class HostStatus(SQLModel, table=True):
    """What a host's agent last reported about one release."""

    host_id: int = Field(foreign_key="host.id", primary_key=True)
    release_id: int = Field(foreign_key="release.id", primary_key=True)
    state: str
    pieces_verified: int = 0
    bytes_done: int = Field(default=0, sa_type=BigInteger)
    bytes_downloaded: int = Field(default=0, sa_type=BigInteger)
    download_rate: float = 0.0
    error: str = ""
    updated_at: float = Field(default_factory=now)


class ThroughputSample(SQLModel, table=True):
    """The fleet's aggregate download rate, one row per ``bucket`` (a time slot): the page's history
    comes from here, not from when a browser opened it. Every worker may write a slot; the first wins."""

    bucket: int = Field(primary_key=True)
    time: float
    download_rate: float
    hosts: int


class Completion(SQLModel, table=True):
    """Counts ``completed`` events per release, for scrape's ``downloaded``."""

    release_id: int = Field(foreign_key="release.id", primary_key=True)
    count: int = 0


class Deployment(SQLModel, table=True):
    """A model version to a set of hosts (resolved when the job is created)."""

    id: int | None = Field(default=None, primary_key=True)
    key: str | None = Field(default=None, index=True, unique=True)  # client-supplied idempotency key
    release_id: int = Field(foreign_key="release.id", index=True)
    targets: str  # what was asked for, as JSON: {"hosts": [...]}, {"racks": [...]} or {"all": true}
    state: str = "pending"
    cancelled: bool = False
    created_at: float = Field(default_factory=now)
    updated_at: float = Field(default_factory=now)
    finished_at: float | None = None


class DeploymentHost(SQLModel, table=True):
    deployment_id: int = Field(foreign_key="deployment.id", primary_key=True)
    host_id: int = Field(foreign_key="host.id", primary_key=True, index=True)
    state: str = "pending"
    since: float = Field(default_factory=now)
    last_report: float | None = None
    pieces_verified: int = 0
    bytes_done: int = Field(default=0, sa_type=BigInteger)
    download_rate: float = 0.0
    error: str = ""


# -- API shapes -----------------------------------------------------------------------------


class HostCreate(SQLModel):
    name: str = Field(min_length=1, max_length=128, regex=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    location: str = Field(default="", max_length=256, description="dc|pod|rack")
    role: str = Field(default="client", regex=r"^(client|seedbox)$")


class HostPublic(SQLModel):
    name: str
    location: str
    role: str
    revoked: bool


class HostCreated(HostPublic):
    passkey: str
    created: bool


class ReleaseCreate(SQLModel):
    manifest: dict[str, Any]
    torrent: str = Field(description="the .torrent file, base64")
    stripes: int = Field(default=1, ge=1, le=MAX_STRIPES,
                         description="torrents the model is split into, each its own swarm with its own "
                         "gateway per rack (1: one torrent, which stock clients can join)")


class ReleasePublic(SQLModel):
    name: str
    version: str
    root: str
    total_size: int
    num_pieces: int
    info_hash_v1: str | None = Field(description="SHA-1 info hash (hybrid and v1 torrents; null for v2)")
    info_hash_v2: str | None = Field(description="SHA-256 info hash truncated to 20 bytes, as v2 peers announce "
                                     "it (null for v1)")
    created_at: float
    stripes: int = 1


class PeerCertificateRequest(SQLModel):
    public_key: str  # PEM: the host's own key, which never leaves it


class PeerCertificate(SQLModel):
    certificate: str  # PEM, signed by the peer CA
    expires: float  # Unix time


class PeerRevocations(SQLModel):
    addresses: list[str]  # refuse peers there: their hosts were revoked, their certificates may still be good
    poll: float  # s: ask again this often


class StatusReport(SQLModel):
    name: str
    version: str
    state: str = Field(max_length=32)
    # Bounded by what the database's BIGINT holds: beyond it the driver overflows (a 500).
    pieces_verified: int = Field(default=0, ge=0, le=2**63 - 1)
    bytes_done: int = Field(default=0, ge=0, le=2**63 - 1)
    bytes_downloaded: int = Field(default=0, ge=0, le=2**63 - 1)
    download_rate: float = Field(default=0.0, ge=0, le=1e18)
    error: str = Field(default="", max_length=4096)


class StatusPublic(StatusReport):
    host: str
    location: str
    total_size: int
    num_pieces: int
    updated_at: float


class DeploymentCreate(SQLModel):
    name: str
    version: str
    hosts: list[str] | None = None
    racks: list[str] | None = None
    all: bool = False
    key: str | None = Field(default=None, max_length=200, description="idempotency key: same key, same job")


class DeploymentHostPublic(SQLModel):
    host: str
    location: str
    state: str
    pieces_verified: int
    bytes_done: int
    download_rate: float
    error: str
    last_report: float | None


class DeploymentPublic(SQLModel):
    id: int
    key: str | None
    name: str
    version: str
    state: str
    targets: dict[str, Any]
    total_size: int
    num_pieces: int
    hosts_by_state: dict[str, int]
    created_at: float
    updated_at: float
    finished_at: float | None
    download_rate: float = 0.0  # bytes/s: the sum of its downloading hosts' rates
    eta_seconds: float | None = None  # its bytes still to go at that rate; None when nothing moves
    hosts: list[DeploymentHostPublic] | None = None


class DesiredModel(SQLModel):
    deployment_id: int
    name: str
    version: str
    state: str


class AgentHello(SQLModel):
    location: str | None = Field(default=None, max_length=256)


class SwarmPublic(SQLModel):
    torrent: str
    seeders: int
    leechers: int


class SeedboxPublic(SQLModel):
    host: str
    torrent: str
    state: str
    bytes_done: int
    bytes_read: int
    total_size: int
    error: str


class OverviewPublic(SQLModel):
    """What the swarm-health page shows besides jobs: swarms, seedbox ingress, throughput."""

    time: float
    swarms: list[SwarmPublic]
    seedboxes: list[SeedboxPublic]
    download_rate: float  # sum of the rates hosts reported in the last few seconds
    hosts_reporting: int
    history: list[tuple[float, float]] = []  # (time, bytes/s) samples, oldest first


def stripe_version(version: str, stripe: int) -> str:
    """The version a stripe's row is registered under."""
    return f"{version}#stripe-{stripe}"


def published() -> Any:
    """``select(Release)`` of the published versions, without their stripes' rows."""
    from sqlmodel import col, select

    return select(Release).where(col(Release.stripe_of).is_(None))
