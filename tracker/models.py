"""Database tables (SQLModel) and the JSON shapes of the admin API."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


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


class Release(SQLModel, table=True):
    """One model version: its signed manifest and its torrent."""

    __table_args__ = (UniqueConstraint("name", "version"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    version: str
    root: str
    total_size: int
    num_pieces: int
    # Peers of a hybrid torrent announce under both hashes; both lead to this one swarm.
    info_hash_v1: str = Field(index=True, unique=True)  # 40 hex
    info_hash_v2: str = Field(index=True, unique=True)  # 40 hex: SHA-256 truncated to 20 bytes
    manifest: str = Field(sa_column=Column(Text, nullable=False))
    torrent: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: float = Field(default_factory=now)


class Peer(SQLModel, table=True):
    release_id: int = Field(foreign_key="release.id", primary_key=True)
    peer_id: str = Field(primary_key=True)  # 40 hex
    host_id: int = Field(foreign_key="host.id", index=True)
    first_seen: float = Field(default_factory=now)
    ip: str
    port: int
    left: int
    uploaded: int = 0
    downloaded: int = 0
    last_seen: float = Field(default_factory=now, index=True)


class HostStatus(SQLModel, table=True):
    """What a host's agent last reported about one release."""

    host_id: int = Field(foreign_key="host.id", primary_key=True)
    release_id: int = Field(foreign_key="release.id", primary_key=True)
    state: str
    pieces_verified: int = 0
    bytes_done: int = 0
    bytes_downloaded: int = 0
    download_rate: float = 0.0
    error: str = ""
    updated_at: float = Field(default_factory=now)


class Completion(SQLModel, table=True):
    """Counts ``completed`` events per release, for scrape's ``downloaded``."""

    release_id: int = Field(foreign_key="release.id", primary_key=True)
    count: int = 0


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


class ReleasePublic(SQLModel):
    name: str
    version: str
    root: str
    total_size: int
    num_pieces: int
    info_hash_v1: str
    info_hash_v2: str
    created_at: float


class StatusReport(SQLModel):
    name: str
    version: str
    state: str = Field(max_length=32)
    pieces_verified: int = Field(default=0, ge=0)
    bytes_done: int = Field(default=0, ge=0)
    bytes_downloaded: int = Field(default=0, ge=0)
    download_rate: float = Field(default=0.0, ge=0)
    error: str = Field(default="", max_length=4096)


class StatusPublic(StatusReport):
    host: str
    location: str
    total_size: int
    num_pieces: int
    updated_at: float
