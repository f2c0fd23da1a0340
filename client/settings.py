"""The client's one settings object, read from ``MODELTORRENT_CLIENT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import PeerSettings


class ClientSettings(PeerSettings):
    model_config = SettingsConfigDict(env_prefix="MODELTORRENT_CLIENT_", extra="ignore")

    root: Path = Path("/var/lib/modeltorrent")
    download_rate: int = Field(default=0, ge=0, description="bytes/s, 0 = unlimited")
    keep_versions: int = Field(default=3, ge=1)
    resume_interval: float = 5.0
    # Free space kept beyond the model when checking the disk before a download.
    disk_reserve: int = 256 * 1024 * 1024
