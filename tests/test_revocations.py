"""Which addresses peers refuse (tracker/revocations.py ``refused``): a table."""

from __future__ import annotations

import pytest

from tracker import revocations
from tracker.revocations import refused

HOUR = 3600.0


@pytest.mark.parametrize(("revoked", "honest", "expected", "why"), [
    ([], [], [], "nobody revoked"),
    ([("10.0.0.9", 0.0)], [], ["10.0.0.9"], "revoked a minute ago"),
    ([("10.0.0.9", 0.0), ("10.0.1.9", 0.0)], [], ["10.0.0.9", "10.0.1.9"], "each address it was seen at"),
    ([("10.0.0.9", 0.0)], ["10.0.0.9"], [], "an honest host is seen there too (NAT, one machine)"),
    ([("10.0.0.9", -HOUR)], [], [], "revoked longer ago than a certificate lives: TLS refuses it"),
    ([("10.0.0.9", -HOUR), ("10.0.0.9", 0.0)], [], ["10.0.0.9"], "two hosts revoked there, one recently"),
])
def test_refused(revoked: list[tuple[str, float]], honest: list[str], expected: list[str], why: str) -> None:
    assert refused(revoked, honest, at=60.0, window=HOUR) == expected, why


def test_the_listing_is_worked_out_once_per_ttl_and_again_after_an_invalidation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []
    def addresses(session: object, window: float) -> list[str]:
        calls.append(window)
        return ["10.0.0.9"]

    monkeypatch.setattr(revocations, "addresses", addresses)
    listing = revocations.Listing(ttl=60.0)
    assert listing.get(None, HOUR) == ["10.0.0.9"]  # type: ignore[arg-type]
    assert listing.get(None, HOUR) == ["10.0.0.9"]  # type: ignore[arg-type]
    assert len(calls) == 1  # every host asks; the database is read once a ttl
    listing.invalidate()  # a host revoked or registered again
    listing.get(None, HOUR)  # type: ignore[arg-type]
    assert len(calls) == 2
