"""The libtorrent settings every modeltorrent session starts from."""

from __future__ import annotations

import pytest

from common.lt_session import Caps, settings_pack


def test_our_settings_are_in_the_pack_and_an_override_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELTORRENT_LT_SETTINGS", raising=False)
    pack = settings_pack("127.0.0.1:0", Caps())
    assert "aio_threads" not in pack  # libtorrent's default: see the sweep in docs/tune-report.md
    assert pack["enable_outgoing_utp"] is False and pack["allow_multiple_connections_per_ip"] is True
    monkeypatch.setenv("MODELTORRENT_LT_SETTINGS", '{"aio_threads": 7}')
    assert settings_pack("127.0.0.1:0", Caps())["aio_threads"] == 7


@pytest.mark.parametrize(("raw", "says"), [("[1]", "JSON object"), ("{", "not JSON"),
                                           ('{"no_such_setting": 1}', "unknown libtorrent settings")])
def test_bad_overrides_say_what_is_wrong(monkeypatch: pytest.MonkeyPatch, raw: str, says: str) -> None:
    monkeypatch.setenv("MODELTORRENT_LT_SETTINGS", raw)
    with pytest.raises(ValueError, match=says):
        settings_pack("127.0.0.1:0", Caps())
