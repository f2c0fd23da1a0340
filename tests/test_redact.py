"""Passkeys masked in libtorrent's alert texts before they reach a log (common/lt_session.py)."""

from __future__ import annotations

import pytest

from common.lt_session import redact


@pytest.mark.parametrize("text,expected", [
    ("b2 (http://t:8000/announce?passkey=b89150708efc)[v1] sending announce",
     "b2 (http://t:8000/announce?passkey=***)[v1] sending announce"),
    ("http://t/announce?passkey=abc&info_hash=x", "http://t/announce?passkey=***&info_hash=x"),
    ("http://t/announce?info_hash=x&passkey=abc", "http://t/announce?info_hash=x&passkey=***"),
    ("'http://t/announce?passkey=abc' failed", "'http://t/announce?passkey=***' failed"),
    ("no secret here", "no secret here"),
])
def test_passkeys_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected
