"""The tracker's one settings object, read from ``MODELTORRENT_TRACKER_*`` environment variables."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from common import peer_certs


class TrackerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODELTORRENT_TRACKER_", extra="ignore")

    database_url: str = "sqlite:///./modeltorrent-tracker.db"
    admin_token: SecretStr = Field(
        validation_alias=AliasChoices(
            "admin_token", "MODELTORRENT_TRACKER_ADMIN_TOKEN", "MODELTORRENT_ADMIN_TOKEN"
        )
    )
    # HTTPS: a PEM certificate (chain) and its key; both or neither. Without, passkeys and the admin
    # token cross the network in clear.
    tls_cert: str | None = None
    tls_key: str | None = None
    # Peers that talk only to registered hosts (common/peer_certs.py): the peer CA's PEM certificate
    # and key, both or neither. With them, torrents must carry the CA (publish puts it in) and each
    # host gets a certificate for its key, good for peer_cert_hours.
    peer_ca_cert: str | None = None
    peer_ca_key: str | None = None
    peer_cert_hours: float = Field(default=peer_certs.DEFAULT_HOURS, gt=0,
                                   description="how long a host's peer certificate is good for: the longest a "
                                   "revoked host can still reach peers directly")
    peer_revocation_poll: float = Field(default=peer_certs.REVOCATION_POLL, gt=0,
                                        description="how often hosts ask which addresses to refuse (revoked hosts): "
                                        "the longest a revoked host keeps a connection it holds")
    # Base URL written into the torrents handed to hosts; by default the URL the host asked on.
    # Comma-separated for a failover pair: every tracker, each its own tier (BEP 12), first tried first.
    public_url: str | None = None
    interval: int = Field(default=60, ge=1, description="announce interval in seconds")
    interval_jitter: float = Field(default=0.1, ge=0, le=0.5)
    min_interval: int = Field(default=5, ge=1)
    # A peer not heard from in peer_ttl_factor * interval seconds leaves the swarm.
    peer_ttl_factor: float = Field(default=2.5, gt=1)
    # Rack-aware peer lists (see tracker/peers.py). Off: every host is told about random peers
    # and the seedbox, as a stock tracker does (the distribution benchmark's baseline).
    rack_aware: bool = True
    remote_share: float = Field(default=0.2, ge=0, le=1, description="share of peers from other racks")
    seedbox_per_rack: int = Field(default=1, ge=1, description="gateways per rack: first downloaders, given the "
                                  "seedbox and the other racks' gateways")
    # Deployment jobs: a host silent this long is stalled; the reconcile loop runs this often.
    stall_timeout: float = Field(default=120.0, gt=0)
    reconcile_interval: float = Field(default=5.0, gt=0)
    # Per host and worker: more announces than this a second (after a burst) are refused.
    announces_per_host: float = Field(default=2.0, gt=0)
    announce_burst: float = Field(default=30.0, ge=1)
    numwant_default: int = 50
    numwant_max: int = 200
