"""Tracker protocol, pure: parsing raw query strings and writing bencoded responses."""

from __future__ import annotations

import ipaddress
from urllib.parse import quote_from_bytes

import bencode
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracker.protocol import (
    PeerAddress,
    ScrapeEntry,
    TrackerError,
    announce_response,
    failure,
    parse_announce,
    parse_scrape,
    scrape_response,
)

HASH = bytes(range(0xE0, 0xF4))  # not valid UTF-8
PLUS = b"+" * 20


def q(**params: bytes | str | int) -> bytes:
    parts = []
    for key, value in params.items():
        raw = value if isinstance(value, bytes) else str(value).encode()
        parts.append(f"{key}={quote_from_bytes(raw)}")
    return "&".join(parts).encode()


BASE = dict(info_hash=HASH, peer_id=b"-MT0100-" + b"x" * 12, port=6881, uploaded=0, downloaded=0,
            left=100, passkey="k")


def test_failure_bytes_are_pinned() -> None:
    assert failure("error message") == b"d14:failure reason13:error messagee"


def test_should_parse_raw_bytes_that_are_not_utf8() -> None:
    req = parse_announce(q(**BASE, event="started", numwant=10))
    assert req.info_hash == HASH
    assert req.event == "started" and req.numwant == 10 and req.compact


def test_should_keep_a_literal_plus_as_a_byte() -> None:
    raw = q(**(BASE | {"info_hash": b"a" * 20})).replace(b"info_hash=" + b"a" * 20, b"info_hash=" + PLUS)
    assert parse_announce(raw).info_hash == PLUS


BAD = [
    ("missing info_hash", q(**{k: v for k, v in BASE.items() if k != "info_hash"}), "missing info_hash"),
    ("19-byte hash", q(**(BASE | {"info_hash": HASH[:19]})), "20 bytes"),
    ("21-byte hash", q(**(BASE | {"info_hash": HASH + b"x"})), "20 bytes"),
    ("repeated info_hash", q(**BASE) + b"&info_hash=" + quote_from_bytes(HASH).encode(), "more than once"),
    ("negative port", q(**(BASE | {"port": -1})), "invalid port"),
    ("port too big", q(**(BASE | {"port": 70000})), "invalid port"),
    ("huge counter", q(**(BASE | {"left": 10**30})), "invalid left"),
    ("text counter", q(**(BASE | {"uploaded": "lots"})), "invalid uploaded"),
    ("bad event", q(**BASE, event="exploded"), "invalid event"),
    ("no passkey", q(**{k: v for k, v in BASE.items() if k != "passkey"}), "missing passkey"),
    ("empty", b"", "missing passkey"),
    ("broken percent", q(**BASE).replace(b"port=6881", b"port=%zz"), "invalid port"),
]


LENIENT = [  # (case, the announce, what it is taken as): as stock trackers take them
    ("numwant above any limit", q(**BASE, numwant=10**6), {"numwant": 10**6}),  # clamped by the swarm
    ("numwant -1", q(**BASE, numwant=-1), {"numwant": None}),  # the tracker's default
    ("numwant garbage", q(**BASE, numwant="all"), {"numwant": None}),
    ("no left", q(**{k: v for k, v in BASE.items() if k != "left"}), {"left": None}),  # not a seed
    ("port 0", q(**(BASE | {"port": 0})), {"port": 0}),  # accepts no connections
]


@pytest.mark.parametrize("raw,taken", [c[1:] for c in LENIENT], ids=[c[0] for c in LENIENT])
def test_announces_stock_trackers_take_are_taken(raw: bytes, taken: dict) -> None:
    req = parse_announce(raw)
    assert {k: getattr(req, k) for k in taken} == taken


@pytest.mark.parametrize("raw,match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_should_refuse_malformed_announces(raw: bytes, match: str) -> None:
    with pytest.raises(TrackerError, match=match):
        parse_announce(raw)


def test_announce_response_is_compact_ipv4_and_ipv6() -> None:
    peers = [PeerAddress("10.0.0.1", 6881, b"a" * 20), PeerAddress("::1", 51413, b"b" * 20),
             PeerAddress("::ffff:10.0.0.2", 1, b"c" * 20)]
    raw = bencode.Bencode(encoding=None)
    body = raw.decode(announce_response(interval=60, min_interval=5, complete=1, incomplete=2,
                                            peers=peers, compact_form=True))
    body = {k.decode(): v for k, v in body.items()}
    assert body["peers"] == bytes([10, 0, 0, 1, 0x1A, 0xE1, 10, 0, 0, 2, 0, 1])
    assert body["peers6"] == bytes(15) + b"\x01" + (51413).to_bytes(2, "big")
    assert (body["interval"], body["min interval"], body["complete"], body["incomplete"]) == (60, 5, 1, 2)


def test_announce_response_bytes_are_pinned() -> None:
    body = announce_response(interval=60, min_interval=5, complete=0, incomplete=1,
                             peers=[PeerAddress("127.0.0.1", 6881, b"x" * 20)], compact_form=True)
    assert body == b"d8:completei0e10:incompletei1e8:intervali60e12:min intervali5e5:peers6:\x7f\x00\x00\x01\x1a\xe1e"


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 10**5),
       st.lists(st.tuples(st.ip_addresses(), st.integers(1, 65535)), max_size=60))
def test_announce_response_is_what_bencode_writes(complete: int, incomplete: int, interval: int, min_interval: int,
                                                  addrs: list[tuple[object, int]]) -> None:
    peers = [PeerAddress(str(ip), port, b"p" * 20) for ip, port in addrs]
    body = announce_response(interval=interval, min_interval=min_interval, complete=complete,
                             incomplete=incomplete, peers=peers, compact_form=True)
    expected: dict[str, object] = {"interval": interval, "min interval": min_interval, "complete": complete,
                                   "incomplete": incomplete, "peers": _compact(peers, 4)}
    v6 = _compact(peers, 6)
    if v6:
        expected["peers6"] = v6
    assert body == bencode.encode(expected)


def _mapped(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    addr = ipaddress.ip_address(ip)
    return addr.ipv4_mapped if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped else addr


def _compact(peers: list[PeerAddress], version: int) -> bytes:
    """BEP 23 / BEP 7 entries written the slow, obvious way."""
    return b"".join(_mapped(p.ip).packed + p.port.to_bytes(2, "big") for p in peers
                    if _mapped(p.ip).version == version)


def test_scrape_parses_several_hashes_and_writes_files_dict() -> None:
    passkey, hashes = parse_scrape(b"passkey=k&info_hash=" + quote_from_bytes(HASH).encode()
                                   + b"&info_hash=" + PLUS)
    assert passkey == "k" and hashes == [HASH, PLUS]
    body = scrape_response([ScrapeEntry(HASH, 1, 2, 3)])
    assert body == b"d5:filesd20:" + HASH + b"d8:completei1e10:downloadedi3e10:incompletei2eeee"
