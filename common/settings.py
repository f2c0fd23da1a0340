"""Settings every libtorrent peer of ours has (seedbox and client); each service adds its own."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

# Peers a host uploads to at once (libtorrent's ``unchoke_slots_limit``). Few: a piece is forwarded
# only once whole, so each upload split more ways delays every hop of a piece through the swarm.
# README, "Distribution benchmark": a lab rack of 8 took 14-18 s with 4 slots, 22 s with 8, 30 s
# with 32; the simulator agrees at 40 hosts a rack with 64 MiB pieces.
UPLOAD_SLOTS = 4


class PeerSettings(BaseSettings):
    tracker_url: str
    passkey: SecretStr
    listen: str = "0.0.0.0:6881"
    trusted_keys: list[str] = Field(default_factory=list, description="publisher keys (hex)")
    upload_rate: int = Field(default=0, ge=0, description="bytes/s to the swarm, 0 = unlimited")
    connections: int = Field(default=200, ge=0)
    upload_slots: int = Field(default=UPLOAD_SLOTS, ge=1, description="peers uploaded to at once")
    status_interval: float = 1.0
    # How long a fetch or the seedbox keeps asking a tracker it cannot reach for the manifest and
    # torrent at its start before it gives up (restarted while the tracker restarts: seen in the
    # soak, tools/lab/soak.py), with backoff.
    tracker_wait: float = Field(default=120.0, ge=0)
    metrics_listen: str | None = Field(default=None, description="host:port for Prometheus /metrics")


def tracker_urls(value: str) -> list[str]:
    """A tracker URL setting as its URLs: comma-separated for a failover pair (the first tried
    first), without trailing slashes."""
    return [u.strip().rstrip("/") for u in value.split(",") if u.strip()]
