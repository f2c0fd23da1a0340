"""What a restarted client (or seedbox) finds on disk: the pieces it saved as verified, and those written after.

The state saved across a restart is the set of verified pieces (``store.save_verified``), saved
every few seconds once libtorrent has flushed them. Pieces finished after the last save are on
disk too (a killed process leaves its written pages in the page cache), but unknown to the state:
they are found here by the file having data where they lie (``SEEK_DATA``: libtorrent's files are
sparse, so a piece never written is a hole) and by hashing them against the signed manifest. A
piece cut short by the kill fails the hash and is downloaded again. So a restart neither hashes
the whole model again nor downloads what was already there.

A striped version (one torrent per stripe over the same files) with nothing saved, on a client
or a seedbox, is checked here once (``known`` empty) instead of by libtorrent once per stripe.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common.hashing import piece_root
from common.layout import Layout, PieceSpan


def still_there(verified: set[int], layout: Layout, save_path: Path) -> set[int]:
    """The pieces saved as verified, if the files still reach past each of them; none if not
    (a file removed or cut short since: libtorrent then checks what is there)."""
    verified = {i for i in verified if 0 <= i < layout.num_pieces}
    for index in verified:
        span = layout.pieces[index]
        try:
            if (save_path / layout.files[span.file_index].path).stat().st_size < span.file_offset + span.length:
                return set()
        except OSError:
            return set()
    return verified


def _has_data(path: Path, span: PieceSpan) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.lseek(fd, span.file_offset, os.SEEK_DATA) < span.file_offset + span.length
    except OSError:  # ENXIO: only a hole from there to the end
        return False
    finally:
        os.close(fd)


def written_after_the_save(layout: Layout, digests: list[bytes], save_path: Path, known: set[int],
                           workers: int | None = None) -> set[int]:
    """Pieces not in ``known`` that are whole on disk and hash to the manifest's root."""
    def check(index: int) -> int | None:
        span = layout.pieces[index]
        path = save_path / layout.files[span.file_index].path
        if not _has_data(path, span):
            return None
        with open(path, "rb") as f:
            data = os.pread(f.fileno(), span.length, span.file_offset)
        ok = len(data) == span.length and piece_root(data, span, layout) == digests[index]
        return index if ok else None

    candidates = [i for i in range(layout.num_pieces) if i not in known]
    with ThreadPoolExecutor(workers or os.cpu_count() or 1, thread_name_prefix="ondisk") as pool:
        return {i for i in pool.map(check, candidates) if i is not None}
