"""Two trackers on one database, as a failover pair: torrents list both (BEP 12, a tier each), and
the API client moves to the next URL when one cannot be reached. Real tracker processes, libtorrent
seedbox and client. The pair in network namespaces, one killed mid-deployment: ``test_lab_failover.py``."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import libtorrent as lt
import pytest

from client.store import ModelStore
from common.errors import ApiError
from common.manifest import Manifest
from tests.conftest import ADMIN, publish_model
from tests.test_integration import run_client, start_seedbox
from tools.demo.procs import Procs, free_port, start_tracker
from tracker.api_client import TrackerClient

MiB = 1 << 20


def test_with_the_first_tracker_down_the_second_serves_api_and_announces(
        tmp_path: Path, procs: Procs, publisher_key: Path) -> None:
    db = tmp_path / "tracker.db"
    dead = f"http://127.0.0.1:{free_port()}"  # the pair's first tracker, never started: as if killed
    port = free_port()
    pair = f"{dead},http://127.0.0.1:{port}"
    start_tracker(procs, db, ADMIN, interval=2, port=port, env={"MODELTORRENT_TRACKER_PUBLIC_URL": pair})
    publish_model(tmp_path, pair, publisher_key, {"w.safetensors": 2 * MiB}, piece_size=256 * 1024,
                  source=str(tmp_path / "external-m-1"))
    with TrackerClient(pair, admin_token=ADMIN) as admin:
        seedbox = admin.add_host("seedbox", role="seedbox")["passkey"]
        host = admin.add_host("h1")["passkey"]
        assert admin.url.endswith(f":{port}")  # moved on, and stays there
    with TrackerClient(pair, passkey=host) as api:
        meta = lt.bdecode(api.torrent("m", "1"))
    tiers = [[url.decode().split("?")[0] for url in tier] for tier in meta[b"announce-list"]]
    assert tiers == [[f"{dead}/announce"], [f"http://127.0.0.1:{port}/announce"]]
    start_seedbox(procs, tmp_path, pair, seedbox)
    done = run_client(tmp_path, pair, host, "h1")
    assert done.returncode == 0, done.stderr
    Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes()).verify_data(
        ModelStore(tmp_path / "hosts" / "h1").current("m"))


def test_with_every_tracker_down_the_error_names_the_last() -> None:
    urls = f"http://127.0.0.1:{free_port()},http://127.0.0.1:{free_port()}"
    with TrackerClient(urls, admin_token=ADMIN) as admin, pytest.raises(ApiError, match="cannot reach the tracker"):
        admin.add_host("h1")


@pytest.fixture
def hangs_up() -> Iterator[str]:
    """A URL whose server accepts each connection, reads the request and closes without an answer:
    a tracker killed while it handled the request."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    listener.close()


def test_a_get_cut_off_mid_request_moves_on_and_a_post_is_not_sent_twice(
        tmp_path: Path, procs: Procs, hangs_up: str) -> None:
    url = start_tracker(procs, tmp_path / "tracker.db", ADMIN)
    with TrackerClient(f"{hangs_up},{url}", admin_token=ADMIN) as admin:
        assert admin.list_hosts() == []  # a GET: sent again to the second
        assert admin.url == url
    with TrackerClient(f"{hangs_up},{url}", admin_token=ADMIN) as admin, \
            pytest.raises(ApiError, match="cannot reach the tracker"):
        admin.add_host("h1")  # a POST the first may have carried out: not sent again
    with TrackerClient(url, admin_token=ADMIN) as admin:
        assert admin.list_hosts() == []
