"""The seedbox's one settings object, read from ``MODELTORRENT_SEEDBOX_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from common.settings import UPLOAD_SLOTS, PeerSettings
from seedbox.parts import MIN_PART


class SeedboxSettings(PeerSettings):
    model_config = SettingsConfigDict(env_prefix="MODELTORRENT_SEEDBOX_", extra="ignore")

    workdir: Path = Path("/var/lib/modeltorrent-seedbox")
    connections: int = Field(default=500, ge=0)
    upload_slots: int = Field(default=UPLOAD_SLOTS, ge=1, description="peers uploaded to at once, for each stripe's "
                              "torrent (libtorrent's limit is the session's: seedbox/seeder.py seedbox_slots)")
    fetch_concurrency: int = Field(default=4, ge=1, description="parallel reads from the source")
    read_part_min: int = Field(default=MIN_PART, ge=1, description="smallest range of a piece a lane reads: "
                               "a piece is read by up to fetch_concurrency lanes at once, in parts of at least this")
    fetch_retries: int = Field(default=3, ge=0)
    source_patience: float = Field(default=600.0, ge=0, description="seconds a piece's reads may keep failing "
                                   "(each after its fetch_retries) before the seedbox gives up")
    source_timeout: float = Field(default=60.0, gt=0, description="seconds without a byte from the source "
                                  "before a read is given up and retried (from where it stopped)")
    ingress_rate: int = Field(default=0, ge=0, description="bytes/s read from the source, 0 = unlimited")
    stall_timeout: float = Field(default=20.0, gt=0, description="renew the web seed lanes when libtorrent "
                                 "has taken no spooled piece for this long")
    # Streaming seed: pieces go to the swarm as they arrive. Off: the whole model is read to disk
    # first and seeded after (how a stock seeder works; the distribution benchmark's baseline).
    stream: bool = True
    # Before the first read from the source: how long to wait for the swarm's bitfields, so that a
    # restarted seedbox reads first what no host holds.
    availability_wait: float = Field(default=5.0, ge=0)
