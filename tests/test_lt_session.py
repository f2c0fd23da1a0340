"""The libtorrent settings every modeltorrent session starts from."""

from __future__ import annotations

import pytest

from common.lt_session import Caps, aio_threads, settings_pack


@pytest.mark.parametrize(("cores", "threads"), [(1, 2), (2, 2), (6, 6), (10, 10), (64, 10)])
def test_disk_threads_follow_the_cores_between_2_and_libtorrents_default(cores: int, threads: int) -> None:
    assert aio_threads(cores) == threads


def test_the_tuned_settings_are_in_the_pack_and_an_override_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELTORRENT_LT_SETTINGS", raising=False)
    pack = settings_pack("127.0.0.1:0", Caps())
    assert pack["aio_threads"] == aio_threads()
    assert pack["enable_outgoing_utp"] is False
    monkeypatch.setenv("MODELTORRENT_LT_SETTINGS", '{"aio_threads": 7}')
    assert settings_pack("127.0.0.1:0", Caps())["aio_threads"] == 7


@pytest.mark.parametrize(("raw", "says"), [("[1]", "JSON object"), ("{", "not JSON"),
                                           ('{"no_such_setting": 1}', "unknown libtorrent settings")])
def test_bad_overrides_say_what_is_wrong(monkeypatch: pytest.MonkeyPatch, raw: str, says: str) -> None:
    monkeypatch.setenv("MODELTORRENT_LT_SETTINGS", raw)
    with pytest.raises(ValueError, match=says):
        settings_pack("127.0.0.1:0", Caps())
