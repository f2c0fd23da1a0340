"""One place that knows how modeltorrent configures a libtorrent session (see DESIGN.md).

- TCP only: uTP over loopback and fast LANs was ~30x slower.
- Rate limits apply to every peer: by default libtorrent puts private ranges and 127/8 in its
  "local" peer class, which ignores limits, so all addresses are moved to the global class.
- No DHT, LSD, UPnP or NAT-PMP: torrents are private and peers come from our tracker only.
- A narrow alert mask: with every category on, the queue drops alerts such as hash failures.
  Peer alerts are in it for the bans (``Bans``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import libtorrent as lt

from common import tls
from common.settings import UPLOAD_SLOTS

USER_AGENT = "modeltorrent/0.1"


@dataclass(frozen=True)
class Caps:
    """Per-host limits; 0 means unlimited (bytes/s for rates)."""

    upload_rate: int = 0
    download_rate: int = 0
    connections: int = 200
    dscp: int = 0  # DiffServ code point on peer connections (0: unmarked)
    upload_slots: int = UPLOAD_SLOTS  # peers unchoked at once

    def pack(self) -> dict[str, int]:
        """The settings that carry these caps, also for ``session.apply_settings`` at run time."""
        return {"upload_rate_limit": self.upload_rate, "download_rate_limit": self.download_rate,
                "connections_limit": self.connections or 100_000,
                "unchoke_slots_limit": self.upload_slots,
                # libtorrent 2.1 writes peer_dscp into the IP TOS byte as it is (checked with tcpdump:
                # peer_dscp 8 went out as tos 0x08): the code point goes in the upper six bits.
                "peer_dscp": self.dscp << 2}


def settings_pack(listen: str, caps: Caps, *, announce_interval_floor: int = 5,
                  tracker_alerts: bool = False) -> dict[str, object]:
    mask = (
        lt.alert_category.error
        | lt.alert_category.status
        | lt.alert_category.storage
        | lt.alert_category.piece_progress
        | lt.alert_category.peer  # bans (also incoming connections, peer errors: a few per peer)
    )
    if tracker_alerts:  # tracker replies: a few per announce interval
        mask |= lt.alert_category.tracker
    debug = os.environ.get("MODELTORRENT_LT_DEBUG", "")
    if debug:  # peers and trackers too, for troubleshooting
        mask |= lt.alert_category.connect | lt.alert_category.tracker
    if debug in ("2", "3"):  # libtorrent's own log of each torrent (hash checks, bans and why), and
        # which peer each block came from (two alerts per 16 KiB block: 130,000 per GiB; for the lab)
        mask |= lt.alert_category.torrent_log | lt.alert_category.block_progress
    if debug == "3":  # and of each peer connection: every request and block (thousands a second)
        mask |= lt.alert_category.peer_log
    return {
        "listen_interfaces": listen,
        "user_agent": USER_AGENT,
        "alert_mask": int(mask),
        "alert_queue_size": 10_000,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        **caps.pack(),
        # libtorrent's default floor (300 s) would override a shorter tracker interval.
        "min_announce_interval": announce_interval_floor,
        # Inside a datacenter a lost connection is worth retrying at once, not after 60 s.
        "min_reconnect_time": 1,
        **overrides(),
    }


# libtorrent's own disk, hashing, buffer, queue and choking settings are kept: swept side by side
# with ``python -m tools.bench.tune`` (docs/tune-report.md), none helped both the one-peer fetch
# and the swarm. The closest, 2 disk threads (aio_threads) on this 2-core machine instead of 10:
# 1.12x the fetch rate and 0.79x the seedbox's upload CPU, but T/T_min 1.26-1.27 against 1.22 in
# the emulated datacenter (python -m tools.bench.distribute, two runs each, side by side; a later
# run with the default gave 1.28, so the swarm showed no gain either way: not kept).


def overrides() -> dict[str, object]:
    """libtorrent settings from ``MODELTORRENT_LT_SETTINGS`` (a JSON object of settings_pack names),
    for tuning and benchmarks. Raises ValueError naming what is wrong."""
    raw = os.environ.get("MODELTORRENT_LT_SETTINGS")
    if not raw:
        return {}
    try:
        given = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"MODELTORRENT_LT_SETTINGS is not JSON: {exc}") from exc
    if not isinstance(given, dict):
        raise ValueError("MODELTORRENT_LT_SETTINGS must be a JSON object of libtorrent settings")
    known = lt.default_settings()
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"MODELTORRENT_LT_SETTINGS: unknown libtorrent settings {unknown}")
    return dict(given)


# An SSL torrent's peers (common/peer_certs.py) connect to a listen socket of their own: the port
# this far above the plain one (0 stays 0: any).
SSL_PORT_OFFSET = 1000


def ssl_listen(listen: str) -> str:
    """The SSL listen interfaces beside ``listen`` ("0.0.0.0:6881" -> "0.0.0.0:7881s")."""
    out = []
    for one in listen.split(","):
        host, _, port = one.strip().rpartition(":")
        out.append(f"{host}:{int(port) + SSL_PORT_OFFSET if port not in ('', '0') else 0}s")
    return ",".join(out)


def make_session(listen: str, caps: Caps, *, tracker_alerts: bool = False, ssl: bool = False) -> lt.session:
    """``ssl``: also listen for SSL torrents' peers (``ssl_listen``)."""
    tls.for_libtorrent()  # an HTTPS tracker's certificate is checked against the CA bundle, if one is set
    if ssl:
        listen = f"{listen},{ssl_listen(listen)}"
    ses = lt.session(settings_pack(listen, caps, tracker_alerts=tracker_alerts))  # type: ignore[call-overload]
    everyone = lt.ip_filter()
    everyone.add_rule("0.0.0.0", "255.255.255.255", 1 << ses.global_peer_class_id)
    everyone.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 << ses.global_peer_class_id)
    ses.set_peer_class_filter(everyone)
    return ses


# How long a host keeps refusing an address it banned, across its restarts: long enough to outlast
# a deployment, short enough that an address handed to a new, honest host later is not shunned.
BAN_HOURS = 24.0
# libtorrent bans a peer it finds the sole sender of a piece that failed its hash, and that finding
# can be wrong: in the soak (tools/lab/soak.py, MODELTORRENT_LT_DEBUG=2) the seedbox was banned as
# the sole sender of a piece whose blocks had also been asked of the attacker (late blocks after a
# timeout, end-game duplicates) tens of milliseconds before it failed, once in 10-20 rounds, while
# the seedbox's copy of that piece had passed its own check and other hosts took it from the seedbox
# fine. libtorrent's own test of that case (v2_hash_failure_bans_correct_peer) was disabled until
# its "Smart ban v2" (Sep 2026), after 2.1.1, the newest wheel. So an address is blocked at its
# second ban within STRIKE_WINDOW: the attacker, serving junk for every piece, is banned again
# within seconds; an honest peer blamed once is not. Each ban still drops the connection and the
# partial pieces (client/fetch.py), so the first costs the attacker's victim a reconnect.
STRIKES = 2
STRIKE_WINDOW = 3600.0  # s


@dataclass
class Bans:
    """Addresses this host will not talk to again, once libtorrent has banned a peer there.

    libtorrent bans an entry of its peer list, an (address, port). With
    ``allow_multiple_connections_per_ip`` a banned host that connects back arrives from a new port,
    as a new entry: in the lab a peer serving corrupt blocks was banned and kept reconnecting, and
    each round of its junk cost its honest rack-mates trust points (they had sent blocks of the same
    pieces) until one was banned too. So a ban blocks the whole address in the session's IP filter,
    for both directions. Loopback is left alone: on one machine every peer shares it.

    libtorrent's bans count as strikes (``strike``): the address is blocked at the STRIKES-th.

    ``path``: where bans are kept (with when), so that a restarted client still refuses them. Seen
    in the soak (tools/lab/soak.py): a client killed after banning the attacker forgot it, took its
    junk again, and banned an honest rack-mate whose blocks shared the failed pieces.
    """

    blocked: set[str] = field(default_factory=set)
    path: Path | None = None
    _since: dict[str, float] = field(default_factory=dict)
    # Addresses of revoked hosts, as the tracker last listed them (common/peer_identity.py): refused
    # too, loopback included (the tracker lists no address an honest host shares), not kept on disk.
    revoked: set[str] = field(default_factory=set)
    _struck: dict[str, list[float]] = field(default_factory=dict)  # libtorrent's bans not yet blocking

    def restore(self, ses: lt.session | list[lt.session], now: float | None = None) -> set[str]:
        """Block again the addresses banned within ``BAN_HOURS`` (kept at ``path``); returns them."""
        if self.path is None or not self.path.exists():
            return set()
        now = time.time() if now is None else now
        try:
            kept = {str(a): float(t) for a, t in json.loads(self.path.read_text()).items()}
        except (ValueError, AttributeError, TypeError):
            return set()  # unreadable: start clean rather than fail the download
        self._since = {a: t for a, t in kept.items() if now - t < BAN_HOURS * 3600}
        self.blocked |= set(self._since)
        if self.blocked:
            self._apply(ses)
        return set(self._since)

    def strike(self, ses: lt.session | list[lt.session], address: str, now: float | None = None) -> str:
        """libtorrent banned ``address``: "blocked" if that is its STRIKES-th ban within
        STRIKE_WINDOW (blocked, as ``ban``), "struck" if it is not blocked yet, "ignored" for
        loopback, an address already blocked or not an address."""
        if not self._blockable(address):
            return "ignored"
        now = time.time() if now is None else now
        times = [t for t in self._struck.get(address, []) if now - t < STRIKE_WINDOW] + [now]
        if len(times) < STRIKES:
            self._struck[address] = times
            return "struck"
        self._struck.pop(address, None)
        self.ban(ses, address, now)
        return "blocked"

    def ban(self, ses: lt.session | list[lt.session], address: str, now: float | None = None) -> bool:
        """Block ``address`` (in each of the sessions, one per stripe); False if it is loopback or
        already blocked."""
        if not self._blockable(address):
            return False
        self.blocked.add(address)
        self._since[address] = time.time() if now is None else now
        self._apply(ses)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._since))
            os.replace(tmp, self.path)
        return True

    def _blockable(self, address: str) -> bool:
        """An address, not loopback (every peer shares it on one machine), not blocked yet."""
        try:
            return not ipaddress.ip_address(address).is_loopback and address not in self.blocked
        except ValueError:
            return False

    def revoke(self, ses: lt.session | list[lt.session], addresses: set[str]) -> set[str]:
        """Refuse ``addresses`` (and no longer those revoked before that are not among them); the
        addresses newly refused. libtorrent closes their open connections."""
        valid = set()
        for address in addresses:
            try:
                valid.add(str(ipaddress.ip_address(address)))
            except ValueError:
                continue
        new = valid - self.revoked
        if valid != self.revoked:
            self.revoked = valid
            self._apply(ses)
        return new

    def _apply(self, ses: lt.session | list[lt.session]) -> None:
        rules = lt.ip_filter()
        for blocked in self.blocked | self.revoked:
            rules.add_rule(blocked, blocked, 1)  # 1: ip_filter.blocked; libtorrent drops their connections
        for one in ses if isinstance(ses, list) else [ses]:
            one.set_ip_filter(rules)


def listen_port(ses: lt.session) -> int:
    return int(ses.listen_port())


def add_params(torrent: bytes, save_path: str, resume: bytes | None = None) -> lt.add_torrent_params:
    """Params to add a model torrent whose files land directly in ``save_path``.

    The torrent's top folder (the model name) is stripped, so ``save_path/<relative path>`` holds
    the model as it was published. Resume data, when given, is used; without it libtorrent
    rechecks whatever is on disk.
    """
    atp = lt.read_resume_data(resume) if resume else lt.add_torrent_params()
    ti = lt.torrent_info(torrent)
    files = ti.layout()
    prefix = ti.name() + "/"
    for i in range(files.num_files()):
        path = files.file_path(i).replace("\\", "/")
        if path.startswith(prefix):
            ti.rename_file(i, path[len(prefix):])
    atp.ti = ti
    atp.save_path = save_path
    # Not queued: libtorrent's queue runs 3 downloads at once (active_downloads) and holds the rest
    # back; a striped version's torrents (one per stripe) must all run. Seen: 6 of 8 stripes announced.
    atp.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)  # the queue would resume a paused one
    return atp


_PASSKEY = re.compile(r"(passkey=)[^&\s)\]\"']+")


def alert_message(alert: lt.alert) -> str:
    """An alert's text with any passkey in it (tracker URLs carry one) masked: fit for a log."""
    return redact(alert.message())


def redact(text: str) -> str:
    return _PASSKEY.sub(r"\1***", text)
