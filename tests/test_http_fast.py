"""Announces answered on the connection (``tracker/http_fast.py``), against a served tracker: HTTP
as a client sees it (keep-alive, HTTP/1.0, HEAD, pipelining) is the same as for any other route."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest

from tests.conftest import publish_model
from tests.test_tracker_http import bdecode, pid

PS = 64 * 1024


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.db'}"


@pytest.fixture
def target(tmp_path: Path, tracker_url: str, admin, publisher_key: Path) -> tuple[str, int, str]:  # type: ignore[no-untyped-def]
    release = publish_model(tmp_path, tracker_url, publisher_key, {"m.safetensors": 2 * PS}, torrent_format="hybrid")
    passkey = admin.add_host("h1", "dc1|pod1|r1")["passkey"]
    v1 = bytes.fromhex(release["info_hash_v1"])
    path = (f"/announce?passkey={passkey}&info_hash={quote_from_bytes(v1)}&peer_id={quote_from_bytes(pid(1))}"
            f"&port=7001&uploaded=0&downloaded=0&left=5&compact=1")
    host, port = tracker_url.removeprefix("http://").split(":")
    return host, int(port), path


def read_response(sock: socket.socket, buf: bytearray, *, head: bool = False) -> tuple[bytes, dict[str, str], bytes]:
    """One response off the socket (status line, headers, body by content-length); leftovers stay in ``buf``."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole response: {bytes(buf)!r}")
        buf += chunk
    raw_head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    status, *lines = raw_head.split(b"\r\n")
    headers = {k.decode().lower(): v.decode() for k, v in (line.split(b": ", 1) for line in lines)}
    length = 0 if head else int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    buf[:] = rest[length:]
    return status, headers, rest[:length]


def request(path: str, method: str = "GET", version: str = "1.1") -> bytes:
    return f"{method} {path} HTTP/{version}\r\nHost: tracker\r\nUser-Agent: test\r\n\r\n".encode()


def test_announces_on_one_kept_alive_connection(target: tuple[str, int, str]) -> None:
    host, port, path = target
    with socket.create_connection((host, port), timeout=10) as sock:
        buf = bytearray()
        for _ in range(3):
            sock.sendall(request(path))
            status, headers, body = read_response(sock, buf)
            assert status == b"HTTP/1.1 200 OK"
            assert headers["cache-control"] == "no-store" and headers["content-type"].startswith("text/plain")
            assert "date" in headers and "server" in headers  # as on every other answer
            assert "connection" not in headers
            assert "interval" in bdecode(body)


def test_pipelined_requests_are_answered_in_order(target: tuple[str, int, str]) -> None:
    host, port, path = target
    with socket.create_connection((host, port), timeout=10) as sock:
        # An announce queued behind a request the app answers must not overtake it.
        sock.sendall(request("/metrics") + request(path) + request("/healthz") + request(path))
        buf = bytearray()
        first, second, third, fourth = (read_response(sock, buf) for _ in range(4))
        assert first[2].startswith(b"# HELP")  # the metrics, answered in a worker thread
        assert "interval" in bdecode(second[2])
        assert third[2] == b'{"status":"ok"}'
        assert "interval" in bdecode(fourth[2])


def test_http_1_0_gets_connection_close(target: tuple[str, int, str]) -> None:
    host, port, path = target
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request(path, version="1.0"))
        buf = bytearray()
        _, headers, body = read_response(sock, buf)
        assert headers["connection"] == "close"
        assert "interval" in bdecode(body)
        assert sock.recv(1) == b""  # and the server closed it


def test_head_gets_the_length_and_no_body(target: tuple[str, int, str]) -> None:
    host, port, path = target
    with socket.create_connection((host, port), timeout=10) as sock:
        buf = bytearray()
        sock.sendall(request(path, method="HEAD") + request("/healthz"))
        status, headers, _ = read_response(sock, buf, head=True)
        assert status == b"HTTP/1.1 200 OK" and int(headers["content-length"]) > 0
        assert read_response(sock, buf)[2] == b'{"status":"ok"}'  # nothing of a body came in between


@pytest.mark.parametrize("path,status", [
    ("/announcements", b"HTTP/1.1 404 Not Found"),  # a prefix is not the announce
    ("/announce/", b"HTTP/1.1 307 Temporary Redirect"),  # FastAPI's trailing-slash redirect
])
def test_other_paths_go_to_the_app(target: tuple[str, int, str], path: str, status: bytes) -> None:
    host, port, _ = target
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request(path))
        assert read_response(sock, bytearray())[0] == status


def test_a_post_to_announce_is_the_apps_business(target: tuple[str, int, str]) -> None:
    host, port, path = target
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc".encode())
        assert read_response(sock, bytearray())[0] == b"HTTP/1.1 405 Method Not Allowed"


@pytest.mark.parametrize("agent,ours", [("modeltorrent/0.1", True), ("qBittorrent/4.5.2", False)])
def test_the_user_agent_reaches_the_announce_on_this_path_too(tmp_path: Path, target: tuple[str, int, str],
                                                             agent: str, ours: bool) -> None:
    """Our clients' entries expire after 2.5 intervals, a stock client's first after 900 s
    (tracker/lifetime.py): which one is told by the User-Agent, here as on the app's route."""
    import sqlite3
    import time

    host, port, path = target
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: tracker\r\nUser-Agent: {agent}\r\n\r\n".encode())
        status, _, _ = read_response(sock, bytearray())
    assert status == b"HTTP/1.1 200 OK"
    deadline = time.monotonic() + 10
    rows: list[tuple[float, float]] = []
    while not rows and time.monotonic() < deadline:  # the tracker writes its peers behind
        with sqlite3.connect(tmp_path / "tracker.db") as db:
            rows = db.execute("SELECT last_seen, expires FROM peer").fetchall()
        time.sleep(0.1)
    (seen, expires), = rows
    assert (expires - seen < 60) is ours, expires - seen
