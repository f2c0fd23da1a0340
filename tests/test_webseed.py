"""The seedbox's own web seed: which pieces a byte range falls in (table-driven), Range headers, and
the server answering a real HTTP client the way libtorrent asks (pieces as they are spooled)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from common.layout import plan
from seedbox.webseed import PieceIndex, Slice, SpoolServer, parse_range

K = 4 * 1024  # a quarter piece
# Two files, pieces of 16 KiB (4 K): a.bin 10 K (pieces 0-2), b.bin 4 K (piece 3).
LAYOUT = plan([("a.bin", 10 * K), ("dir/b.bin", 4 * K)], 4 * K)


def whole_pieces(spool: Path) -> Callable[[int], list[tuple[Path, int, int]]]:
    """Pieces spooled whole, one file each (``Seeder.spool_files`` for pieces read in one part)."""
    return lambda piece: [(spool / str(piece), 0, LAYOUT.pieces[piece].length)]


@pytest.mark.parametrize(("file_index", "start", "end", "slices"), [
    (0, 0, 4 * K - 1, [Slice(0, 0, 4 * K)]),  # one whole piece
    (0, 100, 199, [Slice(0, 100, 100)]),  # inside one piece
    (0, 4 * K - 1, 4 * K, [Slice(0, 4 * K - 1, 1), Slice(1, 0, 1)]),  # across a boundary
    (0, 0, 10 * K - 1, [Slice(0, 0, 4 * K), Slice(1, 0, 4 * K), Slice(2, 0, 2 * K)]),  # the whole file
    (0, 9 * K, 10 * K - 1, [Slice(2, K, K)]),  # the short last piece
    (1, 0, 4 * K - 1, [Slice(3, 0, 4 * K)]),  # the second file starts on its own piece
])
def test_a_range_maps_to_the_pieces_holding_it(file_index: int, start: int, end: int, slices: list[Slice]) -> None:
    assert PieceIndex(LAYOUT).slices(file_index, start, end) == slices


@pytest.mark.parametrize(("url_path", "file_index"), [
    ("a.bin", 0),  # a lone file: libtorrent asks for the torrent's name
    ("m/a.bin", 0),  # a folder: <name>/<path>
    ("m/dir/b.bin", 1),
    ("m/dir%2Fb.bin", 1),  # percent-encoded
    ("m/c.bin", None),
    ("", None),
])
def test_a_url_path_names_a_model_file(url_path: str, file_index: int | None) -> None:
    assert PieceIndex(LAYOUT).file_of(url_path) == file_index


@pytest.mark.parametrize(("header", "size", "bounds"), [
    (None, 100, (0, 99)),
    ("bytes=0-9", 100, (0, 9)),
    ("bytes=90-", 100, (90, 99)),
    ("bytes=90-500", 100, (90, 99)),  # clamped to the file
    ("bytes=100-120", 100, None),  # past the end
    ("bytes=5-1", 100, None),
    ("bytes=0-1,5-6", 100, None),  # several ranges: libtorrent never asks for them
    ("items=0-1", 100, None),
    ("bytes=a-b", 100, None),
])
def test_range_headers(header: str | None, size: int, bounds: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == bounds


def test_each_piece_is_sent_as_soon_as_it_is_spooled_and_a_missing_one_is_asked_for(tmp_path: Path) -> None:
    data = bytes(range(256)) * (14 * K // 256)  # both files' bytes back to back
    demanded: list[int] = []
    server = SpoolServer(whole_pieces(tmp_path), LAYOUT, lanes=2, hold=10, demand=demanded.append).start()
    try:
        for piece in (0, 1):
            (tmp_path / str(piece)).write_bytes(data[piece * 4 * K:(piece + 1) * 4 * K])
            server.mark_ready(piece)

        def spool_later() -> None:
            time.sleep(0.5)
            (tmp_path / "2").write_bytes(data[8 * K:10 * K])
            server.mark_ready(2)

        threading.Thread(target=spool_later).start()
        url = server.urls()[1] + "m/a.bin"
        started = time.monotonic()
        with httpx.stream("GET", url, headers={"Range": f"bytes=4000-{10 * K - 1}"}) as response:
            assert response.status_code == 206
            assert response.headers["content-range"] == f"bytes 4000-{10 * K - 1}/{10 * K}"
            chunks = response.iter_raw(4 * K)
            body = next(chunks)
            first_after = time.monotonic() - started
            body += b"".join(chunks)
        assert body == data[4000:10 * K]
        assert first_after < 0.4  # pieces 0 and 1 did not wait for piece 2
        assert demanded == [2]
        assert server.bytes_served == len(body)
    finally:
        server.close()


def test_a_piece_read_in_parts_is_sent_from_its_parts(tmp_path: Path) -> None:
    data = bytes(range(256)) * (4 * K // 256)  # piece 0
    bounds = [(0, K), (K, 2 * K), (2 * K, 4 * K)]
    for start, end in bounds:
        (tmp_path / f"0.{start}").write_bytes(data[start:end])
    server = SpoolServer(lambda piece: [(tmp_path / f"{piece}.{s}", s, e) for s, e in bounds], LAYOUT,
                         lanes=1, hold=10, demand=lambda _: None).start()
    try:
        server.mark_ready(0)
        for first, last in [(0, 4 * K - 1), (K - 10, 2 * K + 9), (2 * K + 1, 3 * K)]:
            response = httpx.get(server.urls()[0] + "m/a.bin", headers={"Range": f"bytes={first}-{last}"})
            assert response.status_code == 206 and response.content == data[first:last + 1], (first, last)
        (tmp_path / f"0.{K}").unlink()  # libtorrent has it (unspooled): zeros, not an error
        response = httpx.get(server.urls()[0] + "m/a.bin", headers={"Range": f"bytes={K - 50}-{K + 49}"})
        assert response.status_code == 206 and response.content == bytes(100)
    finally:
        server.close()


def test_a_piece_libtorrent_already_has_is_filled_with_zeros(tmp_path: Path) -> None:
    server = SpoolServer(whole_pieces(tmp_path), LAYOUT, lanes=1, hold=10, demand=lambda _: None).start()
    try:
        server.mark_done(3)  # from a host; its spool is gone
        response = httpx.get(server.urls()[0] + "m/dir/b.bin", headers={"Range": "bytes=0-99"})
        assert response.status_code == 206 and response.content == bytes(100)
        assert httpx.get(server.urls()[0] + "m/nothing.bin").status_code == 404
        assert httpx.get(server.urls()[0] + "m/a.bin", headers={"Range": f"bytes={10 * K}-"}).status_code == 416
    finally:
        server.close()


def test_rotating_gives_every_lane_a_new_url(tmp_path: Path) -> None:
    server = SpoolServer(whole_pieces(tmp_path), LAYOUT, lanes=3, hold=1, demand=lambda _: None)
    try:
        first = server.urls()
        old, new = server.rotate()
        assert old == first and len(new) == 3 and not set(old) & set(new)
    finally:
        server.server_close()
