"""A ban blocks the peer's address in the session, not only the (address, port) libtorrent banned:
with several connections per IP allowed, a banned host connecting back would arrive as a new peer."""

from __future__ import annotations

import time
from pathlib import Path

import libtorrent as lt
import pytest

from common.lt_session import BAN_HOURS, STRIKE_WINDOW, Bans, Caps, make_session


@pytest.fixture(scope="module")
def session() -> lt.session:
    return make_session("127.0.0.1:0", Caps())


@pytest.mark.parametrize(("address", "blocks", "why"), [
    ("10.1.2.3", True, "a host in the datacenter"),
    ("fd00::7", True, "IPv6 too"),
    ("127.0.0.1", False, "loopback: every peer on one machine shares it"),
    ("::1", False, "IPv6 loopback"),
    ("not-an-ip", False, "nothing to block"),
])
def test_a_ban_blocks_the_address_unless_it_is_shared_loopback(
        session: lt.session, address: str, blocks: bool, why: str) -> None:
    bans = Bans()
    assert bans.ban(session, address) is blocks, why
    if blocks:
        assert session.get_ip_filter().access(address) == 1, why
        assert bans.ban(session, address) is False  # once is enough


def test_earlier_bans_stay_blocked_and_others_stay_open(session: lt.session) -> None:
    bans = Bans()
    bans.ban(session, "10.0.0.1")
    bans.ban(session, "10.0.0.2")
    rules = session.get_ip_filter()
    assert [rules.access(a) for a in ("10.0.0.1", "10.0.0.2", "10.0.0.3", "127.0.0.1")] == [1, 1, 0, 0]


@pytest.mark.parametrize(("age_hours", "kept"), [(0.1, True), (BAN_HOURS - 0.5, True), (BAN_HOURS + 0.5, False)])
def test_a_restarted_client_still_refuses_whom_it_banned(tmp_path: Path, age_hours: float, kept: bool) -> None:
    """Seen in the soak: a client killed after banning the attacker forgot the ban, took its junk
    again, and banned an honest rack-mate that had sent blocks of the same pieces."""
    now = time.time()
    first = make_session("127.0.0.1:0", Caps())
    Bans(path=tmp_path / "banned.json").ban(first, "10.9.9.9", now=now - age_hours * 3600)
    restarted = make_session("127.0.0.1:0", Caps())
    bans = Bans(path=tmp_path / "banned.json")
    assert bans.restore(restarted, now) == ({"10.9.9.9"} if kept else set())
    assert restarted.get_ip_filter().access("10.9.9.9") == (1 if kept else 0)


def test_an_unreadable_ban_file_starts_clean(tmp_path: Path, session: lt.session) -> None:
    (tmp_path / "banned.json").write_text("{not json")
    assert Bans(path=tmp_path / "banned.json").restore(session) == set()


def test_revoked_hosts_are_refused_with_the_bans_and_let_in_again_when_no_longer_listed(
        session: lt.session, tmp_path: Path) -> None:
    bans = Bans(path=tmp_path / "banned.json")
    bans.ban(session, "10.0.0.1")
    assert bans.revoke(session, {"10.0.0.9", "127.0.0.7", "junk"}) == {"10.0.0.9", "127.0.0.7"}
    rules = session.get_ip_filter()
    # Loopback too (the tracker lists no address an honest host shares); the ban stays.
    assert [rules.access(a) for a in ("10.0.0.1", "10.0.0.9", "127.0.0.7", "10.0.0.3")] == [1, 1, 1, 0]
    assert bans.revoke(session, {"10.0.0.9", "127.0.0.7"}) == set()  # nothing new
    bans.revoke(session, {"127.0.0.7"})  # 10.0.0.9 registered again
    rules = session.get_ip_filter()
    assert [rules.access(a) for a in ("10.0.0.1", "10.0.0.9", "127.0.0.7")] == [1, 0, 1]
    assert "127.0.0.7" not in (tmp_path / "banned.json").read_text()  # the tracker's word, not kept


@pytest.mark.parametrize(("strikes_at", "verdicts", "why"), [
    ([0.0], ["struck"], "once: dropped, not blocked (libtorrent's sole-sender rule can blame an honest peer)"),
    ([0.0, 5.0], ["struck", "blocked"], "twice within the window: the attacker, serving junk for every piece"),
    ([0.0, STRIKE_WINDOW + 1.0], ["struck", "struck"], "twice, an hour apart: two honest mishaps"),
    ([0.0, 5.0, 6.0], ["struck", "blocked", "ignored"], "blocked already"),
])
def test_an_address_is_blocked_at_its_second_ban_within_the_window(
        strikes_at: list[float], verdicts: list[str], why: str) -> None:
    session = make_session("127.0.0.1:0", Caps())  # a filter of its own
    bans = Bans()
    assert [bans.strike(session, "10.9.0.1", now=1000.0 + t) for t in strikes_at] == verdicts, why
    assert (session.get_ip_filter().access("10.9.0.1") == 1) is ("blocked" in verdicts), why
    assert bans.strike(session, "127.0.0.1") == "ignored"  # loopback: every peer on one machine shares it
