"""Peers that talk only to registered hosts: libtorrent's SSL torrents with the tracker as their CA
(``common/peer_certs.py``). Real tracker, seedbox and client processes; the rogue is a libtorrent
session in this process that holds the torrent (so knows the info hash) and the seedbox's address."""

from __future__ import annotations

import datetime
import socket
import time
from pathlib import Path

import httpx
import libtorrent as lt
import pytest

from client.store import ModelStore
from common import peer_certs
from common import torrent as torrents
from common.lt_session import SSL_PORT_OFFSET
from common.manifest import Manifest
from tests.conftest import ADMIN, publish_model
from tests.test_integration import run_client, start_seedbox, wait_until
from tools.demo.procs import Procs, free_port, start_tracker
from tracker.api_client import TrackerClient

MiB = 1 << 20


def free_pair() -> int:
    """A port that is free, and free SSL_PORT_OFFSET above it too (the SSL listen port)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + SSL_PORT_OFFSET))
            except OSError:
                continue
        return port
    raise AssertionError("no free pair of ports")


def payload_from(torrent: bytes, peer: tuple[str, int], workdir: Path, cert: tuple[str, str] | None,
                 seconds: float = 8.0) -> int:
    """Payload bytes a libtorrent session gets in ``seconds`` from ``peer``, holding ``torrent`` and,
    if given, a certificate (PEM cert, key): as a rogue would, or a host."""
    ses = lt.session({"listen_interfaces": "127.0.0.1:0,127.0.0.1:0s", "enable_dht": False, "enable_lsd": False,
                      "enable_upnp": False, "enable_natpmp": False, "allow_multiple_connections_per_ip": True})
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = str(workdir)
    handle = ses.add_torrent(params)
    if cert is not None:
        handle.set_ssl_certificate_buffer(cert[0], cert[1], peer_certs.DH_PARAMS)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for port in (peer[1], peer[1] + SSL_PORT_OFFSET):  # the plain port, then the SSL one
            handle.connect_peer((peer[0], port))
        time.sleep(1)
        if handle.status().total_payload_download > 0:
            break
    got = int(handle.status().total_payload_download)
    del ses
    return got


def seeding_with_a_peer_ca(tmp_path: Path, procs: Procs, publisher_key: Path,
                           env: dict[str, str] | None = None) -> tuple[str, tuple[str, str], dict[str, str], int]:
    """A tracker with a peer CA (``env``: more of its settings), a 4 MiB model published there,
    hosts seedbox, h1 and h2 registered and the seedbox seeding on a port of its own. Returns the
    tracker's URL, the CA (certificate, key), the passkeys by host and the seedbox's plain port."""
    ca_cert, ca_key = peer_certs.make_ca()
    (tmp_path / "peer-ca.pem").write_text(ca_cert)
    (tmp_path / "peer-ca.key").write_text(ca_key)
    url = start_tracker(procs, tmp_path / "tracker.db", ADMIN, interval=2,
                        env={"MODELTORRENT_TRACKER_PEER_CA_CERT": str(tmp_path / "peer-ca.pem"),
                             "MODELTORRENT_TRACKER_PEER_CA_KEY": str(tmp_path / "peer-ca.key")} | (env or {}))
    publish_model(tmp_path, url, publisher_key, {"w.safetensors": 4 * MiB}, piece_size=256 * 1024,
                  source=str(tmp_path / "external-m-1"))
    with TrackerClient(url, admin_token=ADMIN) as admin:
        keys = {"seedbox": admin.add_host("seedbox", role="seedbox")["passkey"]}
        keys |= {host: admin.add_host(host)["passkey"] for host in ("h1", "h2")}
    port = free_pair()
    start_seedbox(procs, tmp_path, url, keys["seedbox"], extra=("--listen", f"127.0.0.1:{port}"))
    wait_until(lambda: "seeding" in procs.log("seedbox"), 60, "the seedbox seeding")
    return url, (ca_cert, ca_key), keys, port


def test_only_hosts_with_a_certificate_from_the_tracker_get_the_model(
        tmp_path: Path, procs: Procs, publisher_key: Path) -> None:
    url, (ca_cert, ca_key), keys, port = seeding_with_a_peer_ca(tmp_path, procs, publisher_key)
    h1, h2 = keys["h1"], keys["h2"]
    with TrackerClient(url, passkey=h1) as api:
        torrent = api.torrent("m", "1")
    assert torrents.peer_ca(torrent) == ca_cert, "publish put the tracker's peer CA into the torrent"

    # A registered host: its certificate from the tracker, the model verified.
    done = run_client(tmp_path, url, h1, "h1")
    assert done.returncode == 0, done.stderr
    Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes()).verify_data(
        ModelStore(tmp_path / "hosts" / "h1").current("m"))
    assert (tmp_path / "hosts" / "h1" / "peer" / "peer.key").stat().st_mode & 0o077 == 0

    seed = ("127.0.0.1", port)
    # A rogue that knows the info hash and the seedbox's address: nothing, without a certificate
    # or with one from another CA.
    assert payload_from(torrent, seed, tmp_path / "rogue1", None) == 0
    other_cert, other_key = peer_certs.make_ca("another CA")
    key = peer_certs.new_key()
    assert payload_from(torrent, seed, tmp_path / "rogue2",
                        (peer_certs.issue(other_cert, other_key, key.public, "rogue"), key.key)) == 0
    # A certificate from this CA that has expired (what a revoked host is left with): nothing.
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
    expired = peer_certs.issue(ca_cert, ca_key, key.public, "h2", hours=1, now=past)
    assert payload_from(torrent, seed, tmp_path / "expired", (expired, key.key)) == 0
    # The same session with a certificate the tracker gives a registered host: the bytes flow (so
    # the zeros above are the certificates', not the harness's).
    with TrackerClient(url, passkey=h2) as api:
        issued = api.peer_certificate(key.public)["certificate"]
    assert payload_from(torrent, seed, tmp_path / "h2-session", (issued, key.key)) > 0

    # A revoked host gets no certificate (nor announces); the one it holds runs out.
    httpx.delete(f"{url}/api/hosts/h2", headers={"Authorization": f"Bearer {ADMIN}"}).raise_for_status()
    answer = httpx.post(f"{url}/api/peer-certificate", json={"public_key": key.public}, headers={"X-Passkey": h2})
    assert answer.status_code == 401, answer.text


def test_a_torrent_without_the_peer_ca_is_refused_where_peers_are_authenticated(
        tmp_path: Path, procs: Procs, publisher_key: Path) -> None:
    ca_cert, ca_key = peer_certs.make_ca()
    (tmp_path / "ca.pem").write_text(ca_cert)
    (tmp_path / "ca.key").write_text(ca_key)
    plain = start_tracker(procs, tmp_path / "plain.db", ADMIN, name="plain")
    assert httpx.get(f"{plain}/api/peer-ca").status_code == 404
    publish_model(tmp_path, plain, publisher_key, {"w.bin": MiB}, piece_size=256 * 1024)
    raw = (tmp_path / "out" / "m-1.torrent").read_bytes()
    manifest = Manifest.from_json((tmp_path / "out" / "m-1.manifest.json").read_bytes())
    assert torrents.peer_ca(raw) is None
    strict = start_tracker(procs, tmp_path / "strict.db", ADMIN, name="strict",
                           env={"MODELTORRENT_TRACKER_PEER_CA_CERT": str(tmp_path / "ca.pem"),
                                "MODELTORRENT_TRACKER_PEER_CA_KEY": str(tmp_path / "ca.key")})
    with TrackerClient(strict, admin_token=ADMIN) as admin, pytest.raises(Exception, match="peer CA"):
        admin.register(manifest, raw)


def test_peers_cut_off_a_revoked_host_within_a_poll_though_its_certificate_is_still_good(
        tmp_path: Path, procs: Procs, publisher_key: Path) -> None:
    """A revoked host holding a good certificate and an open connection: the seedbox, told by the
    tracker (``GET /api/peer-revocations``), closes it and refuses it again. The host is a
    libtorrent session on an address of its own (127.0.0.7), downloading slowly."""
    url, _, keys, port = seeding_with_a_peer_ca(tmp_path, procs, publisher_key,
                                                {"MODELTORRENT_TRACKER_PEER_REVOCATION_POLL": "1"})
    h1, h2 = keys["h1"], keys["h2"]
    with TrackerClient(url, passkey=h2) as api:
        torrent = api.torrent("m", "1")  # announcing as h2 (from its own address)

    own = "127.0.0.7"
    key = peer_certs.new_key()
    with httpx.Client(transport=httpx.HTTPTransport(local_address=own)) as http:
        answer = http.post(f"{url}/api/peer-certificate", json={"public_key": key.public}, headers={"X-Passkey": h2})
    answer.raise_for_status()
    ses = lt.session({"listen_interfaces": f"{own}:0,{own}:0s", "outgoing_interfaces": own,
                      "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False})
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(torrent)
    params.save_path = str(tmp_path / "h2")
    handle = ses.add_torrent(params)
    handle.set_download_limit(64 * 1024)  # 4 MiB take a minute (a session's limit spares local peers)
    handle.set_ssl_certificate_buffer(answer.json()["certificate"], key.key, peer_certs.DH_PARAMS)
    handle.connect_peer(("127.0.0.1", port + SSL_PORT_OFFSET))
    wait_until(lambda: handle.status().total_payload_download > 0, 30, "the host getting bytes")
    assert handle.status().num_peers == 1

    with TrackerClient(url, passkey=h1) as api:
        assert api.peer_revocations()["addresses"] == []
    httpx.delete(f"{url}/api/hosts/h2", headers={"Authorization": f"Bearer {ADMIN}"}).raise_for_status()
    with TrackerClient(url, passkey=h1) as api:
        # Its own address, not the one it shares with honest hosts (127.0.0.1: none here).
        assert api.peer_revocations()["addresses"] == [own]
    wait_until(lambda: f"refusing peers at {own}" in procs.log("seedbox"), 20, "the seedbox refusing the revoked host")
    wait_until(lambda: handle.status().num_peers == 0, 10, "the revoked host's connection closed")
    got = handle.status().total_payload_download
    assert got < 4 * MiB
    for _ in range(3):  # and it cannot come back, though its certificate is good for an hour
        handle.connect_peer(("127.0.0.1", port + SSL_PORT_OFFSET))
        time.sleep(1)
    assert handle.status().total_payload_download == got
    assert handle.status().num_peers == 0
    del ses

    # Registered again, the address is no longer refused.
    with TrackerClient(url, admin_token=ADMIN) as admin:
        admin.add_host("h2")
    with TrackerClient(url, passkey=h1) as api:
        assert api.peer_revocations()["addresses"] == []
