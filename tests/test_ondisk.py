"""What a restarted client finds on disk besides its saved state (real sparse files, real hashes)."""

from __future__ import annotations

import os
from pathlib import Path

from common.hashing import piece_root
from common.layout import plan
from common.ondisk import still_there, written_after_the_save

P = 16 * 1024
LAYOUT = plan([("w.bin", 5 * P + 100)], P)  # six pieces, the last 100 bytes long
DATA = os.urandom(5 * P + 100)
DIGESTS = [piece_root(DATA[s.file_offset:s.file_offset + s.length], s, LAYOUT) for s in LAYOUT.pieces]


def sparse_model(root: Path, written: dict[int, bytes]) -> None:
    """The file at full size, a hole everywhere but the given pieces (as libtorrent leaves it)."""
    with open(root / "w.bin", "wb") as f:
        f.truncate(len(DATA))
        for index, data in written.items():
            f.seek(index * P)
            f.write(data)


def piece(index: int) -> bytes:
    return DATA[index * P:(index + 1) * P]


def test_pieces_written_after_the_save_are_found_and_checked(tmp_path: Path) -> None:
    bad = bytearray(piece(3))
    bad[7] ^= 1
    sparse_model(tmp_path, {0: piece(0), 1: piece(1), 2: piece(2)[:P // 2], 3: bytes(bad), 5: DATA[5 * P:]})
    # Saved: 0. Written after: 1 (whole), 5 (the short last piece). Cut short by the kill: 2. Wrong: 3.
    # Never written: 4 (a hole).
    assert written_after_the_save(LAYOUT, DIGESTS, tmp_path, {0}) == {1, 5}


def test_saved_pieces_count_only_while_the_file_reaches_past_them(tmp_path: Path) -> None:
    assert still_there({0, 5}, LAYOUT, tmp_path) == set()  # no file at all
    sparse_model(tmp_path, {0: piece(0)})
    assert still_there({0, 5, 99}, LAYOUT, tmp_path) == {0, 5}  # an index out of range is dropped
    with open(tmp_path / "w.bin", "r+b") as f:
        f.truncate(2 * P)  # cut short since the save
    assert still_there({0, 5}, LAYOUT, tmp_path) == set()
    assert still_there({0, 1}, LAYOUT, tmp_path) == {0, 1}
