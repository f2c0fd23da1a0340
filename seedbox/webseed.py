"""The seedbox's own web seed (BEP 19): spooled pieces served over loopback to its libtorrent.

Handing a piece to libtorrent with ``add_piece`` costs the Python binding ~0.3 CPU-s per 64 MiB
(two copies, one byte by byte, with the GIL held): measured at 10.3 CPU-s per GiB and 0.12 GiB/s
for the whole ingest. A web seed moves the same bytes with ``sendfile`` from the spool file to a
loopback socket, and libtorrent receives, hashes and writes them in C++ (``docs/dataplane-report.md``
has the figures).

libtorrent stops asking a web seed for a file after one error answer for it (seen: a 503 with
``Retry-After: 1`` and ``urlseed_wait_retry`` 1, then no request for 40 s), so a request is never
refused while the piece can still come: the answer starts at once and each piece follows as soon
as it is spooled (the seeder is asked to read it at once, ``demand``, if it is not on its way). A
piece libtorrent got from a host meanwhile is answered with zeros: libtorrent drops blocks of a
piece it has, unhashed. Several
*lanes* (URL prefixes of the same server) give libtorrent several connections at once, since one
HTTP connection answers its requests in order. A lane that sent bytes failing the hash check is
dropped by libtorrent for good, so the seeder moves every lane to a new URL (``rotate``) once the
piece has been read again.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from common.layout import Layout
from seedbox.parts import part_slices

log = logging.getLogger("modeltorrent.seedbox")

ZEROS = bytes(1 << 20)


@dataclass(frozen=True)
class Slice:
    """Bytes of one piece that a range asks for: ``length`` bytes from ``offset`` in the piece."""

    piece: int
    offset: int
    length: int


class PieceIndex:
    """Which pieces a byte range of a model file falls in (pure: no I/O)."""

    def __init__(self, layout: Layout) -> None:
        self.paths = {f.path: i for i, f in enumerate(layout.files)}
        self.sizes = [f.size for f in layout.files]
        self._starts: list[list[int]] = [[] for _ in layout.files]
        self._pieces: list[list[int]] = [[] for _ in layout.files]
        for index, span in enumerate(layout.pieces):
            self._starts[span.file_index].append(span.file_offset)
            self._pieces[span.file_index].append(index)
        self._lengths = [span.length for span in layout.pieces]

    def file_of(self, url_path: str) -> int | None:
        """The model file a web seed URL path names. libtorrent asks for ``<lane>/<name>/<path>``
        for a folder and ``<lane>/<name>`` for a lone file; the lane is already stripped here."""
        path = unquote(url_path).lstrip("/")
        if path in self.paths:
            return self.paths[path]
        _, _, rest = path.partition("/")  # the torrent's top folder
        return self.paths.get(rest)

    def slices(self, file_index: int, start: int, end: int) -> list[Slice]:
        """The pieces holding bytes ``start`` to ``end`` (inclusive) of a file, in order."""
        starts, pieces = self._starts[file_index], self._pieces[file_index]
        out = []
        k = max(bisect.bisect_right(starts, start) - 1, 0)
        while k < len(starts) and starts[k] <= end:
            piece = pieces[k]
            lo = max(start, starts[k])
            hi = min(end, starts[k] + self._lengths[piece] - 1)
            if lo <= hi:
                out.append(Slice(piece, lo - starts[k], hi - lo + 1))
            k += 1
        return out


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` (or ``a-``) as inclusive bounds inside ``size``; no header is the whole file;
    anything else is None."""
    if header is None:
        return (0, size - 1) if size else None
    unit, _, spec = header.partition("=")
    first, dash, last = spec.partition("-")
    if unit.strip() != "bytes" or not dash or "," in spec:
        return None
    try:
        start = int(first)
        end = int(last) if last.strip() else size - 1
    except ValueError:
        return None
    end = min(end, size - 1)
    return (start, end) if 0 <= start <= end else None


class SpoolServer(ThreadingHTTPServer):
    """Serves spooled pieces on ``127.0.0.1`` (an ephemeral port). ``files`` says which spool files
    hold a piece, each with the range of the piece it holds (``Seeder.spool_files``)."""

    daemon_threads = True

    def __init__(self, files: Callable[[int], Sequence[tuple[Path, int, int]]], layout: Layout, lanes: int,
                 hold: float, demand: Callable[[int], None]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.index = PieceIndex(layout)
        self.lanes = lanes
        self.hold = hold  # seconds a request waits for its pieces
        self.demand = demand  # asks the seeder to read a piece now (called from a request thread)
        self.generation = 0
        self.bytes_served = 0
        self._ready: set[int] = set()
        self._done: set[int] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closing = False
        self._thread = threading.Thread(target=self.serve_forever, name="webseed", daemon=True)

    def start(self) -> SpoolServer:
        self._thread.start()
        return self

    def close(self) -> None:
        with self._changed:  # requests still waiting give up
            self._closing = True
            self._changed.notify_all()
        self.shutdown()
        self.server_close()

    def urls(self) -> list[str]:
        """The lanes' URLs of the current generation."""
        port = self.server_address[1]
        return [f"http://127.0.0.1:{port}/g{self.generation}-{lane}/" for lane in range(self.lanes)]

    def rotate(self) -> tuple[list[str], list[str]]:
        """A new generation of lane URLs: (old, new)."""
        old = self.urls()
        self.generation += 1
        return old, self.urls()

    def mark_ready(self, piece: int) -> None:
        """The piece is whole in the spool."""
        with self._changed:
            self._ready.add(piece)
            self._changed.notify_all()

    def unready(self, piece: int) -> None:
        with self._lock:
            self._ready.discard(piece)

    def mark_done(self, piece: int) -> None:
        """libtorrent has the piece."""
        with self._changed:
            self._done.add(piece)
            self._changed.notify_all()

    def wait(self, piece: int) -> bool:
        """Wait until the piece is spooled or done, asking for it if it is neither; whether it is
        within ``hold`` seconds."""
        def there() -> bool:
            return piece in self._ready or piece in self._done

        with self._changed:
            if there():
                return True
        self.demand(piece)
        with self._changed:
            return self._changed.wait_for(lambda: there() or self._closing, self.hold) and there()

    def is_done(self, piece: int) -> bool:
        with self._lock:
            return piece in self._done

    def count(self, n: int) -> None:
        with self._lock:
            self.bytes_served += n


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: libtorrent sends its requests down one connection
    server: SpoolServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        log.debug("webseed: " + format, *args)

    def handle(self) -> None:
        # libtorrent closes a lane at times (a cancelled request, a duplicate in end game).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def _empty(self, status: int, **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        _, _, rest = self.path.partition("/")
        _lane, _, file_path = rest.partition("/")
        file_index = self.server.index.file_of(file_path)
        if file_index is None:
            self._empty(404)
            return
        size = self.server.index.sizes[file_index]
        bounds = parse_range(self.headers.get("Range"), size)
        if bounds is None:
            self._empty(416, Content_Range=f"bytes */{size}")
            return
        slices = self.server.index.slices(file_index, *bounds)
        # Headers at once, then each piece as soon as it is there: a range can span many pieces
        # (libtorrent asks for up to urlseed_max_request_bytes in one go) and the first must not
        # wait for the last.
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {bounds[0]}-{bounds[1]}/{size}")
        self.send_header("Content-Length", str(bounds[1] - bounds[0] + 1))
        self.end_headers()
        self.wfile.flush()
        for piece in slices:
            if not self.server.wait(piece.piece):
                log.warning("web seed: piece %d not spooled after %.0fs: dropping the request",
                            piece.piece, self.server.hold)
                self.close_connection = True
                return
            if self.server.is_done(piece.piece) or not self._send_piece(piece):
                if self.close_connection:
                    return
                self._zeros(piece.length)

    def _send_piece(self, piece: Slice) -> bool:
        """Send a slice of a spooled piece from its files; False, nothing sent, if they are gone
        (libtorrent has the piece: from a host, or unspooled meanwhile). A file shorter than it
        should be drops the connection (``close_connection``)."""
        files = self.server.files(piece.piece)
        bounds = [(start, end) for _, start, end in files]
        wanted = [(files[k][0], offset, n) for k, offset, n in part_slices(bounds, piece.offset, piece.length)]
        with contextlib.ExitStack() as stack:
            try:  # every file first: one unspooled meanwhile means libtorrent has the piece
                opened = [(stack.enter_context(open(path, "rb")), offset, n) for path, offset, n in wanted]
            except FileNotFoundError:
                return False
            for f, offset, n in opened:
                if not self._send(f, offset, n):
                    self.close_connection = True
                    return False
        return True

    def _send(self, f: BinaryIO, offset: int, left: int) -> bool:
        while left:
            sent = os.sendfile(self.connection.fileno(), f.fileno(), offset, left)
            if not sent:  # the spool is shorter than it said
                return False
            offset += sent
            left -= sent
            self.server.count(sent)
        return True

    def _zeros(self, length: int) -> None:
        """Filler for a piece libtorrent already has: it drops those blocks without hashing them."""
        while length:
            n = min(length, len(ZEROS))
            self.wfile.write(ZEROS[:n])
            length -= n
