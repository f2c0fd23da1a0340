"""A tiny HTTP origin that stands in for external storage in the demo and tests.

Serves a folder with Range support and counts every body byte it delivers, so "bytes read from
external storage" is measured at the source. Delivered means acknowledged by the reader's TCP stack
(``tcpi_bytes_acked``): the bytes that crossed the link. What a reader killed mid-body left in the
origin's send queue never did; ``bytes_written`` (handed to the socket) counts those too.
``GET /_stats`` returns the counters and the (path, first byte) of every read in order, as JSON;
``--fail-every N`` answers every Nth request with a 503, ``--stall-every N`` stops every Nth body
half way for ``--stall-seconds`` (transient-error and timeout tests), ``--flip-once BYTE`` flips
one bit of that byte of a file the first time a body holds it (a source that sent bad bytes once).
``--generate SIZE[:SEED]`` serves a generated model (``generated.py``) at ``/<file>`` instead of a
folder: big-model runs without the model on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

from tools.demo.generated import GeneratedModel

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_CHUNK = 256 << 10
_ESTABLISHED = 1


def _tcp_info(sock: socket.socket) -> tuple[int, int]:
    """(tcpi_state, tcpi_bytes_acked) of a Linux TCP socket (struct tcp_info, Linux >= 4.1)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 192)
    return info[0], struct.unpack_from("=Q", info, 120)[0]


class _CountingWriter:
    """The handler's socket writer, counting every byte (headers too) handed to the socket."""

    def __init__(self, raw: object) -> None:
        self.raw = raw
        self.written = 0

    def write(self, data: bytes) -> int:
        n: int = self.raw.write(data)  # type: ignore[attr-defined]
        self.written += len(data)
        return n

    def __getattr__(self, name: str) -> object:
        return getattr(self.raw, name)


class OriginServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], root: Path, fail_every: int = 0, stall_every: int = 0,
                 stall_seconds: float = 0.0, flip_once: int = -1, generated: GeneratedModel | None = None) -> None:
        super().__init__(address, _Handler)
        self.generated = generated
        self.flip_once = flip_once  # a file's byte to flip in the first body holding it; -1: none
        self.root = root.resolve()
        self.fail_every = fail_every
        self.stall_every, self.stall_seconds = stall_every, stall_seconds
        self.bytes_sent = 0  # delivered: acknowledged by the reader
        self.bytes_written = 0
        self.requests = 0
        self.connections = 0  # TCP connections accepted: a reader that keeps them asks for many ranges on one
        self.settling = 0  # bodies written whole, their acknowledgement awaited (``_acked_since``)
        self.failed = 0  # answered 503 (fail_every)
        self.flipped = 0  # bodies served with a byte flipped (flip_once)
        self.reads: list[tuple[str, int]] = []  # (path, first byte) of every file read, in order
        self.lock = threading.Condition()  # the counters'; notified when a body's count settles


class _Handler(BaseHTTPRequestHandler):
    server: OriginServer
    wfile: _CountingWriter  # type: ignore[assignment]
    # Connections kept open between requests, as S3 and any HTTP/1.1 server keep them (every answer
    # has a Content-Length): under HTTP/1.0 each of the seedbox's range reads paid a new connection
    # and a new thread here.
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.wfile = _CountingWriter(self.wfile)
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = unquote(urlparse(self.path).path)
        if path == "/_stats":
            # A reader that keeps its connection acknowledges a body's last bytes with its delayed
            # ACK (up to 40 ms later), not with a FIN: the bodies it has read are counted first.
            with self.server.lock:
                self.server.lock.wait_for(lambda: not self.server.settling, timeout=1.0)
                body = json.dumps({"bytes_sent": self.server.bytes_sent, "bytes_written": self.server.bytes_written,
                                   "requests": self.server.requests, "connections": self.server.connections,
                                   "reads": self.server.reads,
                                   "flipped": self.server.flipped, "failed": self.server.failed}).encode()
            return self._send(200, body, "application/json")
        with self.server.lock:
            self.server.requests += 1
            n = self.server.requests
        if self.server.fail_every and n % self.server.fail_every == 0:
            with self.server.lock:
                self.server.failed += 1
            return self._send(503, b"try again", "text/plain")
        generated = self.server.generated
        if generated is not None:
            name = path.lstrip("/")
            if name not in generated.files:
                return self._send(404, b"not found", "text/plain")
            size = generated.files[name]

            def read(at: int, n: int) -> bytes:
                return generated.read(name, at, n)
        else:
            target = (self.server.root / path.lstrip("/")).resolve()
            if self.server.root not in target.parents or not target.is_file():
                return self._send(404, b"not found", "text/plain")
            size = target.stat().st_size
            f = open(target, "rb")  # noqa: SIM115 (closed below, after the body)

            def read(at: int, n: int) -> bytes:
                return os.pread(f.fileno(), n, at)
        start, end, status = 0, size - 1, 200
        if header := self.headers.get("Range"):
            m = _RANGE.match(header)
            if not m or int(m.group(1)) >= size:
                return self._send(416, b"bad range", "text/plain")
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            status = 206
        with self.server.lock:
            self.server.reads.append((path, start))
        extra = {"Content-Range": f"bytes {start}-{end}/{size}"} if status == 206 else {}
        self._head(status, end - start + 1, "application/octet-stream", extra)
        before, written = self.wfile.written, 0
        stall_at = (start + end + 1) // 2 if self.server.stall_every and n % self.server.stall_every == 0 else -1
        try:
            at = start
            while at <= end:
                if at == stall_at:
                    time.sleep(self.server.stall_seconds)  # the reader's timeout fires meanwhile
                stop = min(at + _CHUNK, end + 1, stall_at if stall_at > at else end + 1)
                chunk = self._maybe_flip(read(at, stop - at), at)
                self.wfile.write(chunk)
                written += len(chunk)
                at = stop
        finally:  # the reader may have died mid-body: count what reached it
            if generated is None:
                f.close()
            with self.server.lock:
                self.server.settling += 1
            delivered = self._acked_since(before, written)
            with self.server.lock:
                self.server.settling -= 1
                self.server.bytes_written += written
                self.server.bytes_sent += delivered
                self.server.lock.notify_all()

    def _maybe_flip(self, chunk: bytes, at: int) -> bytes:
        with self.server.lock:
            flip = self.server.flip_once
            if not at <= flip < at + len(chunk):
                return chunk
            self.server.flip_once = -1
            self.server.flipped += 1
        i = flip - at
        return chunk[:i] + bytes([chunk[i] ^ 0x01]) + chunk[i + 1:]

    def _acked_since(self, before: int, length: int) -> int:
        """How many of the ``length`` body bytes written after the first ``before`` bytes on this
        connection the reader acknowledged: waits until all are, or the connection is gone."""
        deadline = time.monotonic() + 30.0
        while True:
            state, acked = _tcp_info(self.connection)
            if acked >= before + length or state != _ESTABLISHED or time.monotonic() > deadline:
                return max(0, min(length, acked - before))
            time.sleep(0.002)

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self._head(status, len(body), ctype, extra)
        self.wfile.write(body)

    def _head(self, status: int, length: int, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--root", type=Path, help="serve this folder")
    source.add_argument("--generate", metavar="SIZE[:SEED]", help="serve a generated model of SIZE, e.g. 32GiB")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", type=Path, help="write the bound port here")
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--stall-every", type=int, default=0)
    parser.add_argument("--stall-seconds", type=float, default=5.0)
    parser.add_argument("--flip-once", type=int, default=-1, metavar="BYTE")
    args = parser.parse_args()
    try:
        generated = GeneratedModel.parse(args.generate) if args.generate else None
    except ValueError as exc:
        parser.error(str(exc))
    server = OriginServer((args.host, args.port), args.root or Path("/nonexistent"), args.fail_every,
                          args.stall_every, args.stall_seconds, args.flip_once, generated)
    if args.port_file:
        args.port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
