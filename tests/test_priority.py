"""Low-priority mode: the caps and mark a host uses (pure), table-driven."""

from __future__ import annotations

import pytest

from client import priority
from client.settings import ClientSettings
from common.lt_session import Caps

MiB = 1 << 20


def settings(**kw: object) -> ClientSettings:
    return ClientSettings(tracker_url="http://t", passkey="k", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kw,low,expected", [
    ({}, False, Caps(0, 0, 200, 0)),
    ({"dscp": 10}, False, Caps(0, 0, 200, 10)),
    ({}, True, Caps(25 * MiB, 50 * MiB, 50, 8)),  # unlimited normally: the low caps apply
    ({"upload_rate": 5 * MiB, "download_rate": 400 * MiB}, True, Caps(5 * MiB, 50 * MiB, 50, 8)),  # the lower
    ({"low_priority_upload_rate": 0, "connections": 20}, True, Caps(0, 50 * MiB, 20, 8)),  # 0: no low cap
    ({"low_priority_dscp": 1}, True, Caps(25 * MiB, 50 * MiB, 50, 1)),
    ({"upload_slots": 16}, False, Caps(0, 0, 200, 0, 16)),
    ({"upload_slots": 16}, True, Caps(25 * MiB, 50 * MiB, 50, 8, 16)),  # low priority caps rates, not slots
], ids=["normal", "normal, marked", "low", "low keeps a lower normal cap", "low without an upload cap", "LE mark",
        "upload slots", "upload slots kept when low"])
def test_caps(kw: dict[str, object], low: bool, expected: Caps) -> None:
    assert priority.caps(settings(**kw), low) == expected


def test_caps_become_libtorrent_settings() -> None:
    assert Caps(1, 2, 0, 8, 3).pack() == {"upload_rate_limit": 1, "download_rate_limit": 2,
                                          "connections_limit": 100_000, "peer_dscp": 32,
                                          "unchoke_slots_limit": 3}


@pytest.mark.parametrize("caps,n,expected", [
    (Caps(0, 0, 200, 0, 4), 1, Caps(0, 0, 200, 0, 4)),
    (Caps(0, 0, 200, 8, 4), 4, Caps(0, 0, 50, 8, 4)),  # unlimited stays unlimited; slots per session
    (Caps(1000, 4000, 20, 0, 4), 4, Caps(250, 1000, 8, 0, 4)),  # at least 8 connections each
])
def test_a_hosts_caps_are_split_between_its_sessions(caps: Caps, n: int, expected: Caps) -> None:
    assert priority.share(caps, n) == expected


@pytest.mark.parametrize("listen,index,expected", [
    ("0.0.0.0:6881", 0, "0.0.0.0:6881"), ("0.0.0.0:6881", 2, "0.0.0.0:6883"),
    ("127.0.0.1:0", 3, "127.0.0.1:0"), ("[::]:6881", 1, "[::]:6882"),
])
def test_each_session_listens_on_the_next_port(listen: str, index: int, expected: str) -> None:
    assert priority.listen_of(listen, index) == expected
