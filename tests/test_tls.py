"""The tracker over HTTPS, with a CA the test makes: publish, seedbox, client and libtorrent's
announces all verify its certificate against ``MODELTORRENT_CA_BUNDLE``, and no passkey or admin
token crosses the wire in clear (tcpdump on loopback). Real processes throughout."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from client.store import ModelStore
from common.errors import ApiError
from common.manifest import Manifest
from tests.conftest import ADMIN, publish_model
from tests.system import require_debian_package
from tests.test_integration import run_client, start_seedbox, wait_until
from tests.testca import make_test_ca
from tools.demo.procs import Procs, start_tracker
from tracker.api_client import TrackerClient

MiB = 1 << 20


def test_over_https_everything_verifies_the_tracker_and_no_secret_crosses_in_clear(
        tmp_path: Path, procs: Procs, publisher_key: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tcpdump = require_debian_package("tcpdump", "tcpdump")
    ca = make_test_ca(tmp_path / "ca")
    monkeypatch.setenv("MODELTORRENT_CA_BUNDLE", str(ca.ca))  # this process (publish) and every child
    tracker = start_tracker(procs, tmp_path / "tracker.db", ADMIN, interval=2, tls=(ca.cert, ca.key, ca.ca))
    assert tracker.startswith("https://")
    port = int(tracker.rsplit(":", 1)[1])

    capture = tmp_path / "tracker.pcap"
    dump = subprocess.Popen([tcpdump, "-i", "lo", "-nn", "-U", "-s", "0", "-w", str(capture), f"tcp port {port}"],
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: capture.exists(), 10, "tcpdump to start")
        time.sleep(0.5)
        # The capture sees payloads in clear: a canary sent to the port without TLS is in it.
        with socket.create_connection(("127.0.0.1", port)) as plain:
            plain.sendall(b"GET /canary-in-clear HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.2)
        with TrackerClient(tracker, admin_token=ADMIN) as admin:
            publish_model(tmp_path, tracker, publisher_key, {"w.safetensors": 2 * MiB}, piece_size=256 * 1024,
                          source=str(tmp_path / "external-m-1"))
            seedbox = admin.add_host("seedbox", role="seedbox")["passkey"]
            host = admin.add_host("h1")["passkey"]
            start_seedbox(procs, tmp_path, tracker, seedbox)
            done = run_client(tmp_path, tracker, host, "h1")
            assert done.returncode == 0, done.stderr
            metrics = httpx.get(f"{tracker}/metrics", verify=ssl.create_default_context(cafile=ca.ca)).text
        time.sleep(0.5)
    finally:
        dump.terminate()
        dump.wait(timeout=10)
    Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes()).verify_data(
        ModelStore(tmp_path / "hosts" / "h1").current("m"))
    # libtorrent announced over HTTPS (the seedbox and the host found each other through it).
    announced = [line for line in metrics.splitlines() if line.startswith("modeltorrent_announces_total")]
    assert any(float(line.split()[-1]) > 0 for line in announced if 'result="ok"' in line), announced

    wire = capture.read_bytes()
    assert b"canary-in-clear" in wire, "the capture holds no payload: it would prove nothing"
    for name, secret in [("admin token", ADMIN), ("seedbox passkey", seedbox), ("host passkey", host)]:
        assert secret.encode() not in wire, f"the {name} crossed loopback in clear"


def test_a_host_without_the_ca_is_told_to_pass_it(tmp_path: Path, procs: Procs, publisher_key: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ca = make_test_ca(tmp_path / "ca")
    tracker = start_tracker(procs, tmp_path / "tracker.db", ADMIN, tls=(ca.cert, ca.key, ca.ca))
    monkeypatch.delenv("MODELTORRENT_CA_BUNDLE", raising=False)
    done = run_client(tmp_path, tracker, "some-passkey", "h1")
    assert done.returncode != 0
    assert "certificate" in done.stderr and "--ca-bundle" in done.stderr, done.stderr
    with pytest.raises(ApiError, match="certificate"), TrackerClient(tracker, admin_token=ADMIN) as admin:
        admin.add_host("h2")


