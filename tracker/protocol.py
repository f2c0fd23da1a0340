"""The BitTorrent HTTP tracker protocol: parse requests, write responses. Pure, no I/O.

BEP 3 (announce), BEP 23 (compact peers), BEP 7 (``peers6``), BEP 48 (scrape), BEP 27 (private
torrents). ``info_hash`` and ``peer_id`` are raw bytes, percent-encoded; Starlette's query parser
decodes them as UTF-8 and corrupts them, so the raw query string is parsed here with
``unquote_to_bytes``. ``+`` stays ``+`` (it is a valid byte of a hash, not a space).
Errors go back as HTTP 200 with a bencoded ``failure reason``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

import bencode

EVENTS = frozenset({"", "started", "completed", "stopped", "paused", "empty"})
MAX_COUNTER = 2**63 - 1


class TrackerError(Exception):
    """A refusal whose message is safe to send to the peer as ``failure reason``."""


@dataclass(frozen=True)
class AnnounceRequest:
    info_hash: bytes
    peer_id: bytes
    port: int
    uploaded: int
    downloaded: int
    left: int | None  # None: not given (taken as holding nothing)
    event: str
    numwant: int | None
    compact: bool
    passkey: str


class PeerAddress(NamedTuple):
    ip: str
    port: int
    peer_id: bytes
    entry: bytes = b""  # the compact form (BEP 23/7), when made ahead by ``peer_address``


def peer_address(ip: str, port: int, peer_id: bytes) -> PeerAddress:
    """A peer with its compact form made once, for a peer listed in many answers."""
    return PeerAddress(ip, port, peer_id, _entry(ip, port))


def parse_query(raw: bytes) -> dict[str, list[bytes]]:
    """Split a raw query string into keys and percent-decoded byte values."""
    params: dict[str, list[bytes]] = {}
    for part in raw.split(b"&"):
        if not part:
            continue
        key, _, value = part.partition(b"=")
        try:
            name = (unquote_to_bytes(key) if b"%" in key else key).decode("ascii")
        except UnicodeDecodeError:
            continue  # no key we know is non-ASCII
        params.setdefault(name, []).append(unquote_to_bytes(value) if b"%" in value else value)
    return params


def _one(params: dict[str, list[bytes]], key: str, *, required: bool = True) -> bytes | None:
    values = params.get(key)
    if not values:
        if required:
            raise TrackerError(f"missing {key}")
        return None
    if len(values) > 1:
        raise TrackerError(f"{key} given more than once")
    return values[0]


def _hash20(value: bytes | None, key: str) -> bytes:
    if value is None or len(value) != 20:
        raise TrackerError(f"invalid {key}: must be 20 bytes")
    return value


def _int(params: dict[str, list[bytes]], key: str, *, default: int | None = None,
         low: int = 0, high: int = MAX_COUNTER) -> int:
    value = _one(params, key, required=default is None)
    if value is None:
        assert default is not None
        return default
    text = value.decode("ascii", "replace")
    if not text.isdigit() or len(text) > 19:
        raise TrackerError(f"invalid {key}: must be a whole number")
    number = int(text)
    if not low <= number <= high:
        raise TrackerError(f"invalid {key}: must be from {low} to {high}")
    return number


def _numwant(value: bytes | None) -> int | None:
    """As stock trackers take it: a number out of range is clamped later (to the tracker's
    ``numwant_max``), a negative one (some clients send -1) or garbage means the default."""
    if value is None:
        return None
    try:
        number = int(value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None
    return None if number < 0 else min(number, 1 << 31)


def parse_passkey(params: dict[str, list[bytes]]) -> str:
    value = _one(params, "passkey", required=False)
    if not value:
        raise TrackerError("missing passkey: use the torrent the tracker gave this host")
    try:
        return value.decode("ascii")
    except UnicodeDecodeError as exc:
        raise TrackerError("invalid passkey") from exc


def parse_announce(raw: bytes) -> AnnounceRequest:
    """Raises TrackerError for anything malformed."""
    params = parse_query(raw)
    passkey = parse_passkey(params)
    event = (_one(params, "event", required=False) or b"").decode("ascii", "replace")
    if event not in EVENTS:
        raise TrackerError("invalid event")
    return AnnounceRequest(
        info_hash=_hash20(_one(params, "info_hash"), "info_hash"),
        peer_id=_hash20(_one(params, "peer_id"), "peer_id"),
        # 0: the peer accepts no connections; it is told about others but not handed out
        port=_int(params, "port", low=0, high=65535),
        uploaded=_int(params, "uploaded", default=0),
        downloaded=_int(params, "downloaded", default=0),
        left=None if _one(params, "left", required=False) is None else _int(params, "left"),
        event=event,
        numwant=_numwant(_one(params, "numwant", required=False)),
        compact=(_one(params, "compact", required=False) or b"1") != b"0",
        passkey=passkey,
    )


def parse_scrape(raw: bytes) -> tuple[str, list[bytes]]:
    """The passkey and the info hashes asked for (empty: all the host may see)."""
    params = parse_query(raw)
    passkey = parse_passkey(params)
    return passkey, [_hash20(v, "info_hash") for v in params.get("info_hash", [])]


def failure(message: str) -> bytes:
    return bencode.encode({"failure reason": message})


@lru_cache(maxsize=65536)
def _packed(ip: str) -> bytes:
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.packed


@lru_cache(maxsize=65536)
def _entry(ip: str, port: int) -> bytes:
    return _packed(ip) + port.to_bytes(2, "big")


def compact(peers: Iterable[PeerAddress]) -> tuple[bytes, bytes]:
    """BEP 23 / BEP 7 compact forms: (6-byte IPv4 entries, 18-byte IPv6 entries)."""
    entries = [p.entry or _entry(p.ip, p.port) for p in peers]
    v4 = b"".join(e for e in entries if len(e) == 6)
    v6 = b"".join(e for e in entries if len(e) == 18)
    return v4, v6


def announce_response(
    *, interval: int, min_interval: int, complete: int, incomplete: int,
    peers: list[PeerAddress], compact_form: bool,
) -> bytes:
    body: dict[str, object] = {
        "interval": interval,
        "min interval": min_interval,
        "complete": complete,
        "incomplete": incomplete,
    }
    if compact_form:
        v4, v6 = compact(peers)
        if not v6:
            # Nearly every answer: written directly, keys in bencode's sorted order (the tests hold
            # it to bencode.encode of the same dict).
            return b"d8:completei%de10:incompletei%de8:intervali%de12:min intervali%de5:peers%d:%se" % (
                complete, incomplete, interval, min_interval, len(v4), v4)
        body["peers"], body["peers6"] = v4, v6
    else:
        body["peers"] = [{"ip": p.ip, "port": p.port, "peer id": p.peer_id} for p in peers]
    return bencode.encode(body)


@dataclass(frozen=True)
class ScrapeEntry:
    info_hash: bytes
    complete: int
    incomplete: int
    downloaded: int


def scrape_response(entries: list[ScrapeEntry]) -> bytes:
    files = {
        e.info_hash: {"complete": e.complete, "downloaded": e.downloaded, "incomplete": e.incomplete}
        for e in entries
    }
    return bencode.encode({"files": files})
