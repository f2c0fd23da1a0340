"""Debian's BitTorrent clients, as packaged, download a model published by ``modeltorrent publish``
from our seedbox through our tracker, and their bytes are the model's.

qBittorrent-nox 4.5.2 (libtorrent 2.0.8) reads v2 and hybrid torrents; rtorrent 0.9.8 speaks v1
only, so it gets a hybrid one. Each runs as a daemon with a configuration of its own in the test's
folder, and each is its rack's only host, so the tracker hands it the seedbox. The test setup
installs both packages (``tests/system.py``); without root or apt-get the test skips, under CI it fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import publish_model
from tests.system import require_debian_package
from tests.test_integration import start_seedbox, wait_until
from tools.demo.procs import Procs, free_port

pytestmark = pytest.mark.integration
KiB = 1024
FILES = {"model-00001-of-00002.safetensors": 700 * KiB + 3, "model-00002-of-00002.safetensors": 300 * KiB,
         "config.json": 211}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def same_bytes(got: Path, source: Path) -> bool:
    return all((got / rel).is_file() and (got / rel).stat().st_size == size
               and sha256(got / rel) == sha256(source / rel) for rel, size in FILES.items())


def swarm(tmp_path: Path, procs: Procs, tracker_url: str, admin, publisher_key: Path,  # type: ignore[no-untyped-def]
          torrent_format: str, client: str) -> tuple[Path, Path]:
    """m@1 published in ``torrent_format``, seeded; the .torrent a registered host ``client`` gets."""
    source = tmp_path / "external-m-1"
    publish_model(tmp_path, tracker_url, publisher_key, FILES, piece_size=256 * KiB, source=str(source),
                  torrent_format=torrent_format)
    start_seedbox(procs, tmp_path, tracker_url, admin.add_host("seedbox", "dc1|pod1|seed", role="seedbox")["passkey"])
    status = tmp_path / "seedbox" / "status" / "m@1.json"
    wait_until(lambda: status.exists() and json.loads(status.read_text())["state"] == "seeding", 60,
               "the seedbox to seed")
    passkey = admin.add_host(client, f"dc1|pod1|{client}")["passkey"]  # a rack of its own: it gets the seedbox
    torrent = httpx.get(f"{tracker_url}/api/torrents/m/1/torrent", headers={"X-Passkey": passkey}).content
    path = tmp_path / f"m-1-{client}.torrent"
    path.write_bytes(torrent)
    return path, source


@pytest.fixture
def qbittorrent(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """qbittorrent-nox running with a profile of its own; its Web API URL and download folder."""
    binary = require_debian_package("qbittorrent-nox", "qbittorrent-nox")
    profile, downloads = tmp_path / "qb-profile", tmp_path / "qb-downloads"
    config = profile / "qBittorrent" / "config"
    config.mkdir(parents=True)
    web, port = free_port(), free_port()
    (config / "qBittorrent.conf").write_text("\n".join([
        "[LegalNotice]", "Accepted=true",
        "[BitTorrent]", f"Session\\Port={port}", "Session\\DHTEnabled=false", "Session\\LSDEnabled=false",
        "Session\\PeXEnabled=false", f"Session\\DefaultSavePath={downloads}", "Session\\Interface=lo",
        "Session\\InterfaceName=lo",
        "[Preferences]", "WebUI\\Address=127.0.0.1", f"WebUI\\Port={web}", "WebUI\\LocalHostAuth=false",
        "WebUI\\CSRFProtection=false", "WebUI\\HostHeaderValidation=false", "General\\Locale=en", "",
    ]))
    log = (tmp_path / "qbittorrent.log").open("wb")
    proc = subprocess.Popen([binary, f"--profile={profile}", f"--webui-port={web}"], stdout=log,
                            stderr=subprocess.STDOUT, env=os.environ | {"HOME": str(profile)})
    url = f"http://127.0.0.1:{web}"
    try:
        wait_until(lambda: _answers(f"{url}/api/v2/app/version"), 30, "qbittorrent-nox's Web API")
        yield url, downloads
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("torrent_format", ["v2", "hybrid"])
def test_qbittorrent_nox_downloads_the_model(tmp_path: Path, procs: Procs, tracker_url: str, admin,  # type: ignore[no-untyped-def]
                                             publisher_key: Path, qbittorrent: tuple[str, Path],
                                             torrent_format: str) -> None:
    url, downloads = qbittorrent
    torrent, source = swarm(tmp_path, procs, tracker_url, admin, publisher_key, torrent_format, "qbittorrent")
    added = httpx.post(f"{url}/api/v2/torrents/add", files={"torrents": (torrent.name, torrent.read_bytes())},
                       data={"savepath": str(downloads)}, timeout=10)
    assert added.status_code == 200 and added.text.strip() == "Ok.", added.text

    def done() -> bool:
        info = httpx.get(f"{url}/api/v2/torrents/info", timeout=5).json()
        return bool(info) and info[0]["progress"] == 1
    wait_until(done, 120, "qBittorrent to finish: " + (tmp_path / "qbittorrent.log").read_text(errors="replace")[-500:])
    assert same_bytes(downloads / "m", source)


def test_rtorrent_downloads_a_hybrid_model(tmp_path: Path, procs: Procs, tracker_url: str, admin,  # type: ignore[no-untyped-def]
                                           publisher_key: Path) -> None:
    binary = require_debian_package("rtorrent", "rtorrent")
    torrent, source = swarm(tmp_path, procs, tracker_url, admin, publisher_key, "hybrid", "rtorrent")
    downloads, session, watch = tmp_path / "rt-downloads", tmp_path / "rt-session", tmp_path / "rt-watch"
    for folder in (downloads, session, watch):
        folder.mkdir()
    port = free_port()
    (tmp_path / "rtorrent.rc").write_text("\n".join([
        f"directory.default.set = {downloads}", f"session.path.set = {session}",
        f"network.port_range.set = {port}-{port}", "network.port_random.set = no",
        "dht.mode.set = disable", "protocol.pex.set = no", "trackers.use_udp.set = no",
        "system.daemon.set = true",
        f'schedule2 = watch, 0, 1, ((load.start, "{watch}/*.torrent"))', "",
    ]))
    (watch / torrent.name).write_bytes(torrent.read_bytes())
    procs.start("rtorrent", [binary, "-n", "-o", f"import={tmp_path / 'rtorrent.rc'}"],
                env={"HOME": str(tmp_path), "TERM": "dumb"})
    deadline = time.monotonic() + 120
    while not same_bytes(downloads / "m", source):
        assert procs.procs["rtorrent"].poll() is None, procs.log("rtorrent")[-2000:]
        assert time.monotonic() < deadline, f"rtorrent did not finish: {procs.log('rtorrent')[-2000:]}"
        time.sleep(0.5)


def test_aria2_downloads_a_v1_model(tmp_path: Path, procs: Procs, tracker_url: str, admin,  # type: ignore[no-untyped-def]
                                    publisher_key: Path) -> None:
    """aria2 1.36 computes a wrong info hash for any torrent with v2's file tree: v1 is its format."""
    binary = require_debian_package("aria2", "aria2c")
    torrent, source = swarm(tmp_path, procs, tracker_url, admin, publisher_key, "v1", "aria2")
    downloads = tmp_path / "aria2-downloads"
    result = subprocess.run([binary, f"--dir={downloads}", "--seed-time=0", "--enable-dht=false",
                             "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
                             f"--listen-port={free_port()}", "--console-log-level=warn", "--summary-interval=0",
                             "--check-integrity=true", str(torrent)],
                            capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert same_bytes(downloads / "m", source)


def test_transmission_downloads_a_v1_model(tmp_path: Path, procs: Procs, tracker_url: str, admin,  # type: ignore[no-untyped-def]
                                           publisher_key: Path) -> None:
    """transmission 3.00 cannot open a torrent holding v2's file tree (its empty keys): v1 is its format."""
    binary = require_debian_package("transmission-cli", "transmission-cli")
    torrent, source = swarm(tmp_path, procs, tracker_url, admin, publisher_key, "v1", "transmission")
    downloads = tmp_path / "tr-downloads"
    downloads.mkdir()
    procs.start("transmission", [binary, "-w", str(downloads), "-p", str(free_port()), "-er", "-D", str(torrent)],
                env={"HOME": str(tmp_path)})
    deadline = time.monotonic() + 120
    while not same_bytes(downloads / "m", source):
        assert procs.procs["transmission"].poll() is None, procs.log("transmission")[-2000:]
        assert time.monotonic() < deadline, f"transmission did not finish: {procs.log('transmission')[-2000:]}"
        time.sleep(0.5)
