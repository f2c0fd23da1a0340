"""A standard BitTorrent client joins a modeltorrent swarm with the .torrent the tracker hands a host.

The client here is a stock libtorrent session (the engine of qBittorrent and Deluge) with none of
modeltorrent's settings. Debian's aria2 1.36 and transmission 3.00 cannot be used: they compute a
wrong info hash for any hybrid (v1+v2) torrent (aria2 issue #1927, fixed upstream after 1.36), so
our tracker rightly answers them "unregistered torrent".
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import libtorrent as lt
import pytest

from tests.conftest import publish_model
from tests.test_integration import FILES, start_seedbox, wait_until
from tools.demo.procs import Procs

pytestmark = pytest.mark.integration
KiB = 1024


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def swarm(tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path) -> dict:  # type: ignore[no-untyped-def]
    publish_model(tmp_path, tracker_url, publisher_key, FILES, piece_size=256 * KiB,
                  source=str(tmp_path / "external-m-1"))
    start_seedbox(procs, tmp_path, tracker_url, admin.add_host("seedbox", role="seedbox")["passkey"])
    # A stock client re-announces only every 300 s (libtorrent's floor), so it joins a swarm
    # whose seedbox is already there, as a latecomer would.
    status = tmp_path / "seedbox" / "status" / "m@1.json"
    wait_until(lambda: status.exists() and json.loads(status.read_text())["state"] == "seeding", 60,
               "the seedbox to seed")
    passkey = admin.add_host("standard-client")["passkey"]
    torrent = httpx.get(f"{tracker_url}/api/torrents/m/1/torrent", headers={"X-Passkey": passkey}).content
    path = tmp_path / "m-1.torrent"
    path.write_bytes(torrent)
    return {"torrent": path, "source": tmp_path / "external-m-1", "tracker": tracker_url}


def test_a_stock_libtorrent_session_downloads_the_model(tmp_path: Path, swarm: dict) -> None:
    ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                      "enable_upnp": False, "enable_natpmp": False})
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(str(swarm["torrent"]))
    atp.save_path = str(tmp_path / "stock")
    handle = ses.add_torrent(atp)
    deadline = time.monotonic() + 120
    while not handle.status().is_seeding and time.monotonic() < deadline:
        time.sleep(0.2)
    assert handle.status().is_seeding
    for rel in FILES:
        assert sha256(tmp_path / "stock" / "m" / rel) == sha256(swarm["source"] / rel)
