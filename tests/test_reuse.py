"""Incremental updates: finding shared pieces (pure) and copying them (checked against the new manifest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from client import reuse
from client.reuse import Donor
from common.hashing import piece_root
from common.layout import Layout, plan

PIECE = 16 * 1024


def digests_of(root: Path, layout: Layout) -> list[bytes]:
    out = []
    for span in layout.pieces:
        with open(root / layout.files[span.file_index].path, "rb") as f:
            f.seek(span.file_offset)
            out.append(piece_root(f.read(span.length), span, layout))
    return out


def write(root: Path, files: dict[str, bytes]) -> Layout:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return plan([(rel, len(data)) for rel, data in files.items()], PIECE)


A, B, C = (bytes([i]) * PIECE for i in (1, 2, 3))


@pytest.mark.parametrize("old,new,expected", [
    ({"w": A + B}, {"w": A + C}, {0: ("w", 0)}),
    ({"w": A + B}, {"w": B + A}, {0: ("w", PIECE), 1: ("w", 0)}),  # moved within a file
    ({"x": A, "y": B}, {"z": B + A}, {0: ("y", 0), 1: ("x", 0)}),  # moved across files
    ({"w": A + B[:100]}, {"w": A + B[:99]}, {0: ("w", 0)}),  # same digest needs the same length
    ({"w": A}, {"w": C}, {}),
], ids=["changed piece", "reordered", "renamed and merged", "short tail", "nothing shared"])
def test_plan_finds_shared_pieces(tmp_path: Path, old: dict[str, bytes], new: dict[str, bytes],
                                  expected: dict[int, tuple[str, int]]) -> None:
    old_layout = write(tmp_path / "old", old)
    new_layout = write(tmp_path / "new", new)
    donor = Donor(tmp_path / "old", old_layout, digests_of(tmp_path / "old", old_layout))
    found = reuse.plan(new_layout, digests_of(tmp_path / "new", new_layout), [donor])
    assert {i: (s.path.name, s.offset) for i, s in found.items()} == expected


def test_plan_skips_pieces_already_verified(tmp_path: Path) -> None:
    layout = write(tmp_path / "old", {"w": A + B})
    donor = Donor(tmp_path / "old", layout, digests_of(tmp_path / "old", layout))
    assert list(reuse.plan(layout, donor.digests, [donor], skip={0})) == [1]


def test_copy_writes_matching_pieces_and_leaves_a_damaged_donor_to_the_download(tmp_path: Path) -> None:
    old_layout = write(tmp_path / "old", {"w": A + B + C})
    new_files = {"sub/w": C + A + B}
    new_layout = write(tmp_path / "published", new_files)
    digests = digests_of(tmp_path / "published", new_layout)
    donor = Donor(tmp_path / "old", old_layout, digests_of(tmp_path / "old", old_layout))
    sources = reuse.plan(new_layout, digests, [donor])
    assert sorted(sources) == [0, 1, 2]
    with open(tmp_path / "old" / "w", "r+b") as f:  # the donor changed on disk after its manifest
        f.seek(PIECE + 5)
        f.write(b"\x00")
    copied = reuse.copy(sources, new_layout, digests, tmp_path / "staging")
    assert copied == {0, 1}  # piece 2 (B) is now wrong at the donor
    assert (tmp_path / "staging" / "sub" / "w").read_bytes() == C + A
