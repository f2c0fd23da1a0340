"""The client's one settings object, read from ``MODELTORRENT_CLIENT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELTORRENT_CLIENT_", extra="ignore")

    tracker_url: str
    passkey: SecretStr
    root: Path = Path("/var/lib/modeltorrent")
    listen: str = "0.0.0.0:6881"
    trusted_keys: list[str] = Field(default_factory=list, description="publisher keys (hex)")
    upload_rate: int = Field(default=0, ge=0, description="bytes/s, 0 = unlimited")
    download_rate: int = Field(default=0, ge=0, description="bytes/s, 0 = unlimited")
    connections: int = Field(default=200, ge=0)
    keep_versions: int = Field(default=3, ge=1)
    status_interval: float = 1.0
    resume_interval: float = 5.0
    # Free space kept beyond the model when checking the disk before a download.
    disk_reserve: int = 256 * 1024 * 1024
