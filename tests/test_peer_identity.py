"""A host's peer key and certificate (common/peer_identity.py): made once, kept on disk, renewed past
half its life, kept while the tracker cannot be reached. The tracker's signing is the real one
(common/peer_certs.py); the clock is passed in."""

from __future__ import annotations

import datetime
import time
from pathlib import Path
from typing import Any

import pytest

from common import peer_certs
from common.peer_identity import RETRY, PeerIdentity

CA = peer_certs.make_ca()


class Tracker:
    def __init__(self, hours: float = 1.0) -> None:
        self.hours = hours
        self.issued = 0
        self.down = False

    def issue(self, public_key: str) -> dict[str, Any]:
        if self.down:
            raise ConnectionError("the tracker cannot be reached")
        self.issued += 1
        cert = peer_certs.issue(*CA, public_key, "h1", self.hours)
        return {"certificate": cert, "expires": peer_certs.expires(cert)}


def test_the_key_is_made_once_kept_private_and_the_certificate_reused_from_disk(tmp_path: Path) -> None:
    tracker = Tracker()
    cert, key = PeerIdentity(tmp_path, tracker.issue).certificate()
    assert (tmp_path / "peer.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "peer.key").read_text() == key
    again = PeerIdentity(tmp_path, tracker.issue).certificate()  # a restarted host
    assert again == (cert, key) and tracker.issued == 1


@pytest.mark.parametrize(("after", "down", "issued", "case"), [
    (0.25, False, 1, "a quarter of its life: kept"),
    (0.55, False, 2, "past half its life: renewed"),
    (0.55, True, 1, "past half, the tracker down: kept, asked again later"),
])
def test_renewal(tmp_path: Path, after: float, down: bool, issued: int, case: str) -> None:
    tracker = Tracker(hours=1.0)
    identity = PeerIdentity(tmp_path, tracker.issue)
    first, _ = identity.certificate()
    tracker.down = down
    now = time.time() + after * 3600 + 300  # certificates start 5 minutes early (clock skew)
    identity.refresh([], now)
    assert tracker.issued == issued, case
    assert (identity.certificate(now)[0] == first) == (issued == 1), case
    if down:  # the next attempt waits RETRY seconds, then succeeds once the tracker is back
        tracker.down = False
        identity.refresh([], now + RETRY / 2)
        assert tracker.issued == 1
        identity.refresh([], now + RETRY)
        assert tracker.issued == 2


def test_an_expired_certificate_is_not_taken_for_good() -> None:
    key = peer_certs.new_key()
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=3)
    cert = peer_certs.issue(*CA, key.public, "h1", hours=1, now=past)
    assert peer_certs.expires(cert) < time.time()


@pytest.mark.parametrize(("cert", "key", "error"), [
    (CA[0], CA[1], None),
    (CA[0], peer_certs.make_ca()[1], "not the certificate's"),
    ("junk", CA[1], "not a PEM"),
])
def test_check_ca(cert: str, key: str, error: str | None) -> None:
    if error is None:
        peer_certs.check_ca(cert, key)
    else:
        with pytest.raises(ValueError, match=error):
            peer_certs.check_ca(cert, key)


def test_the_revoked_addresses_are_asked_as_often_as_the_tracker_says_and_kept_while_it_is_down(
        tmp_path: Path) -> None:
    answers: list[dict[str, Any] | Exception] = [
        {"addresses": ["10.0.0.9"], "poll": 5.0}, ConnectionError("down"), {"addresses": [], "poll": 5.0}]
    asked: list[float] = []

    def revocations() -> dict[str, Any]:
        asked.append(now)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    identity = PeerIdentity(tmp_path, Tracker().issue, revocations)
    now = 100.0
    assert identity.revoked(now) == {"10.0.0.9"}
    assert identity.revoked(now + 4.9) is None  # not yet
    now += 5.0
    assert identity.revoked(now) is None  # the tracker is down: what is refused stays so
    assert identity.revoked(now + peer_certs.REVOCATION_POLL - 0.1) is None
    now += peer_certs.REVOCATION_POLL
    assert identity.revoked(now) == set()
    assert asked == [100.0, 105.0, 105.0 + peer_certs.REVOCATION_POLL]
    assert PeerIdentity(tmp_path, Tracker().issue).revoked(0.0) is None  # not asked: no revocations call
