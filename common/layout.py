"""Piece math: how a model's files map onto pieces. Pure, no I/O.

Files are sorted by their path components and each starts on a piece boundary, the layout
libtorrent gives a hybrid (v1+v2) torrent by padding every file to a piece boundary. So manifest
piece ``i`` is torrent piece ``i``, and every piece belongs to exactly one file: its hash covers
that file's bytes only, never padding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from common.errors import LayoutError

BLOCK_SIZE = 16 * 1024
MIN_PIECE_SIZE = BLOCK_SIZE
MAX_PIECE_SIZE = 128 * 1024 * 1024
DEFAULT_PIECE_SIZE = 64 * 1024 * 1024

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a safe model name or version; raise LayoutError otherwise."""
    if not _NAME.match(value) or ".." in value:
        raise LayoutError(
            f"invalid {kind} {value!r}",
            hint="use letters, digits and . _ + - (at most 128, starting with a letter or digit)",
        )
    return value


def check_piece_size(piece_size: int) -> int:
    """Return ``piece_size`` if it is a power of two in [16 KiB, 128 MiB]; raise LayoutError."""
    if (
        piece_size < MIN_PIECE_SIZE
        or piece_size > MAX_PIECE_SIZE
        or piece_size & (piece_size - 1)
    ):
        raise LayoutError(
            f"invalid piece size {piece_size}",
            hint="use a power of two from 16KiB to 128MiB, e.g. 64MiB",
        )
    return piece_size


def check_relpath(path: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path inside a model; raise LayoutError.

    Refuses absolute paths, ``..`` and ``.`` components, empty components, backslashes, NUL and
    the ``.pad`` folder libtorrent reserves for padding.
    """
    parts = path.split("/")
    bad = (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(p in ("", ".", "..") for p in parts)
        or parts[0] == ".pad"
    )
    if bad:
        raise LayoutError(f"unsafe file path in model: {path!r}", hint="paths must stay inside the model")
    return path


def sort_key(path: str) -> tuple[bytes, ...]:
    """The order of a v2 ``file tree``: component by component, as raw bytes."""
    return tuple(p.encode() for p in PurePosixPath(path).parts)


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    offset: int  # where the file starts in the padded piece space
    first_piece: int
    num_pieces: int


@dataclass(frozen=True)
class PieceSpan:
    index: int
    file_index: int
    file_offset: int
    length: int  # bytes of the file in this piece; the rest of the piece is padding


@dataclass(frozen=True)
class Layout:
    piece_size: int
    files: tuple[FileEntry, ...]
    pieces: tuple[PieceSpan, ...]

    @property
    def total_size(self) -> int:
        """Bytes of file data (no padding)."""
        return sum(f.size for f in self.files)

    @property
    def padded(self) -> bool:
        """Whether each file is padded to a piece boundary in the torrent.

        libtorrent pads every file of a multi-file hybrid torrent, the last one too, but leaves a
        lone file unpadded, so its last torrent piece is short.
        """
        return len(self.files) > 1

    @property
    def torrent_size(self) -> int:
        """Bytes as BitTorrent clients count the torrent (and its ``left`` at the start): file data
        and the padding of every file to a piece boundary, when files are padded."""
        if not self.padded:
            return self.total_size
        return sum(-(-f.size // self.piece_size) * self.piece_size for f in self.files)

    @property
    def num_pieces(self) -> int:
        return len(self.pieces)

    def file_of(self, piece: int) -> FileEntry:
        return self.files[self.pieces[piece].file_index]


def plan(files: list[tuple[str, int]], piece_size: int) -> Layout:
    """Lay ``(relative path, size)`` pairs out on pieces of ``piece_size`` bytes.

    Raises LayoutError for unsafe or duplicate paths, a file that is also a folder, negative
    sizes or a bad piece size.
    """
    check_piece_size(piece_size)
    if not any(size > 0 for _, size in files):
        raise LayoutError("the model is empty", hint="publish at least one non-empty file")
    ordered = sorted(files, key=lambda f: sort_key(f[0]))
    seen: set[str] = set()
    for path, size in ordered:
        check_relpath(path)
        if path in seen:
            raise LayoutError(f"duplicate file path in model: {path!r}")
        if size < 0:
            raise LayoutError(f"negative size for {path!r}")
        seen.add(path)
    for path in seen:
        for parent in PurePosixPath(path).parents:
            if str(parent) in seen:
                raise LayoutError(f"{str(parent)!r} is both a file and a folder")
    entries: list[FileEntry] = []
    spans: list[PieceSpan] = []
    for file_index, (path, size) in enumerate(ordered):
        count = -(-size // piece_size)
        first = len(spans)
        entries.append(FileEntry(path, size, first * piece_size, first, count))
        for k in range(count):
            length = min(piece_size, size - k * piece_size)
            spans.append(PieceSpan(first + k, file_index, k * piece_size, length))
    return Layout(piece_size, tuple(entries), tuple(spans))


def auto_piece_size(total_size: int, min_pieces: int = 64, largest: int = DEFAULT_PIECE_SIZE) -> int:
    """The largest power-of-two piece size up to ``largest`` that still gives ``min_pieces``."""
    size = largest
    while size > MIN_PIECE_SIZE * 64 and total_size // size < min_pieces:
        size //= 2
    return size
