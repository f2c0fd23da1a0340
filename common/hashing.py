"""Hash a model's files in one pass: the v2 piece root (manifest and torrent) and, for a hybrid
torrent, SHA-1.

A piece's digest is its BitTorrent v2 (BEP 52) piece-layer hash, the SHA-256 merkle root over its
16 KiB blocks: the manifest signs exactly what libtorrent checks every block against, so a host
hashes each byte once (libtorrent, as blocks arrive) and never reads a piece back to check it.
Each byte is read once. Pieces are hashed on a thread pool, one thread per core by default:
hashlib releases the GIL on large buffers, so threads really run in parallel.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from common import merkle
from common.errors import PieceMismatch, SourceError
from common.layout import Layout, PieceSpan


@dataclass(frozen=True)
class PieceDigest:
    v2: bytes  # merkle root of the piece's 16 KiB blocks: the v2 piece-layer hash, what the manifest signs
    sha1: bytes = b""  # of the piece padded with zeros to the piece size: the v1 hash (hybrid torrents only)


def piece_root(data: bytes | memoryview, span: PieceSpan, layout: Layout) -> bytes:
    """The v2 hash of one piece from its file bytes: what the manifest signs for it."""
    return merkle.piece_hash(data, layout.piece_size, layout.files[span.file_index].size)


def digest_piece(data: bytes | memoryview, span: PieceSpan, layout: Layout, *, v1: bool = False) -> PieceDigest:
    """The hashes of one piece from its file bytes (``span.length`` of them); SHA-1 only if ``v1``."""
    if not v1:
        return PieceDigest(piece_root(data, span, layout))
    sha1 = hashlib.sha1(data)
    if layout.padded and span.length < layout.piece_size:
        sha1.update(bytes(layout.piece_size - span.length))
    return PieceDigest(piece_root(data, span, layout), sha1.digest())


def read_span(root: Path, layout: Layout, span: PieceSpan) -> bytes:
    """Read one piece's file bytes from a model folder. Raises SourceError if short or missing."""
    path = root / layout.files[span.file_index].path
    try:
        with open(path, "rb") as f:
            data = os.pread(f.fileno(), span.length, span.file_offset)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) != span.length:
        raise SourceError(f"{path} is shorter than its manifest says", hint="was it truncated?")
    return data


def hash_tree(
    root: Path,
    layout: Layout,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
    v1: bool = False,
) -> list[PieceDigest]:
    """Hash every piece of the model under ``root`` (SHA-1 too if ``v1``); ``progress`` gets bytes
    done per piece."""

    def one(span: PieceSpan) -> PieceDigest:
        digest = digest_piece(read_span(root, layout, span), span, layout, v1=v1)
        if progress:
            progress(span.length)
        return digest

    return list(_parallel(one, layout.pieces, workers))


def verify_tree(
    root: Path,
    layout: Layout,
    expected: list[bytes],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Check every piece under ``root`` against ``expected`` piece roots.

    Raises PieceMismatch naming the first bad piece (lowest index), or SourceError.
    """

    def one(span: PieceSpan) -> bytes:
        digest = piece_root(read_span(root, layout, span), span, layout)
        if progress:
            progress(span.length)
        return digest

    for span, actual in zip(layout.pieces, _parallel(one, layout.pieces, workers), strict=True):
        if actual != expected[span.index]:
            raise PieceMismatch(
                span.index, layout.files[span.file_index].path,
                expected[span.index].hex(), actual.hex(),
            )


T = TypeVar("T")
R = TypeVar("R")


def _parallel(fn: Callable[[T], R], items: tuple[T, ...], workers: int | None) -> Iterator[R]:
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    # map() keeps order; memory stays at about one piece per worker.
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash") as pool:
        yield from pool.map(fn, items)
