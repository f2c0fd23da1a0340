"""The client's one settings object, read from ``MODELTORRENT_CLIENT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.settings import PeerSettings


class StoreSettings(BaseSettings):
    """What works on the host's model store alone, without a tracker (``client rollback``)."""

    model_config = SettingsConfigDict(env_prefix="MODELTORRENT_CLIENT_", extra="ignore")

    root: Path = Path("/var/lib/modeltorrent")
    keep_versions: int = Field(default=3, ge=1)
    # A shell command run after a version becomes active (a fetch or a rollback), e.g. to reload
    # the inference server; it gets MODELTORRENT_MODEL, MODELTORRENT_VERSION, MODELTORRENT_PATH.
    on_activate: str | None = None
    on_activate_timeout: float = 300.0


class ClientSettings(PeerSettings, StoreSettings):
    model_config = SettingsConfigDict(env_prefix="MODELTORRENT_CLIENT_", extra="ignore")

    download_rate: int = Field(default=0, ge=0, description="bytes/s, 0 = unlimited")
    resume_interval: float = 5.0
    # Free space kept beyond the model when checking the disk before a download.
    disk_reserve: int = 256 * 1024 * 1024
    dscp: int = Field(default=0, ge=0, le=63, description="DSCP mark on peer connections (0: none)")
    # Low-priority mode (client/priority.py): on with this setting or while <root>/low-priority exists.
    low_priority: bool = False
    low_priority_upload_rate: int = Field(default=25 * 1024 * 1024, ge=0)
    low_priority_download_rate: int = Field(default=50 * 1024 * 1024, ge=0)
    low_priority_connections: int = Field(default=50, ge=0)
    low_priority_dscp: int = Field(default=8, ge=0, le=63)  # CS1
    # Copy pieces a new version shares with versions already on this host instead of downloading
    # them (fine-tunes share most pieces with their base).
    reuse_pieces: bool = True
    # libtorrent sessions a striped version's stripes are spread over, each with its own network and
    # disk threads and the next listen port (6881, 6882, ...): where one session's busiest thread is
    # the host's ceiling (tools/sim/ceiling.py). Rate caps and connections are split between them.
    # 1: every stripe in one session (what the lab measured, docs/benchmarks.md).
    sessions: int = Field(default=1, ge=1, le=64)
