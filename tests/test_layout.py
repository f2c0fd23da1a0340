"""Piece math: files onto pieces, names and paths. Table-driven, no I/O."""

from __future__ import annotations

import pytest

from common.errors import LayoutError
from common.layout import auto_piece_size, check_name, check_relpath, plan
from common.units import parse_size

MiB = 1 << 20
PS = 64 * 1024

PLANS = [
    # (id, files, expected [(path, offset, first_piece, num_pieces)], expected spans [(file, off, len)])
    ("one file, partial last piece", [("a", PS + 1)],
     [("a", 0, 0, 2)], [(0, 0, PS), (0, PS, 1)]),
    ("one file, exact pieces", [("a", 2 * PS)],
     [("a", 0, 0, 2)], [(0, 0, PS), (0, PS, PS)]),
    ("files start on piece boundaries", [("b", 10), ("a", PS + 5)],
     [("a", 0, 0, 2), ("b", 2 * PS, 2, 1)], [(0, 0, PS), (0, PS, 5), (1, 0, 10)]),
    ("empty file takes no piece", [("z", 3), ("e", 0)],
     [("e", 0, 0, 0), ("z", 0, 0, 1)], [(1, 0, 3)]),
    ("component order, not string order", [("a-b", 1), ("a/x", 1)],
     [("a/x", 0, 0, 1), ("a-b", PS, 1, 1)], [(0, 0, 1), (1, 0, 1)]),
]


@pytest.mark.parametrize("files,entries,spans", [p[1:] for p in PLANS], ids=[p[0] for p in PLANS])
def test_plan_should_lay_files_on_piece_boundaries(files, entries, spans) -> None:
    layout = plan(files, PS)
    assert [(f.path, f.offset, f.first_piece, f.num_pieces) for f in layout.files] == entries
    assert [(s.file_index, s.file_offset, s.length) for s in layout.pieces] == spans
    assert [s.index for s in layout.pieces] == list(range(len(spans)))
    assert layout.total_size == sum(size for _, size in files)


BAD_PATHS = ["", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a\\b", ".pad/1", "a\0b", "a/"]


@pytest.mark.parametrize("path", BAD_PATHS, ids=[repr(p) for p in BAD_PATHS])
def test_should_refuse_paths_that_leave_the_model(path: str) -> None:
    with pytest.raises(LayoutError):
        check_relpath(path)


@pytest.mark.parametrize("files,match", [
    ([("a", 1), ("a", 2)], "duplicate"),
    ([("a", 1), ("a/b", 2)], "both a file and a folder"),
    ([("a", 0)], "empty"),
    ([("../a", 1)], "unsafe"),
], ids=["duplicate", "file and folder", "empty model", "traversal"])
def test_plan_should_refuse_bad_file_sets(files, match) -> None:
    with pytest.raises(LayoutError, match=match):
        plan(files, PS)


@pytest.mark.parametrize("size", [0, 1000, 3 * PS, 256 * MiB])
def test_should_refuse_piece_sizes_that_are_not_powers_of_two_in_range(size: int) -> None:
    with pytest.raises(LayoutError, match="piece size"):
        plan([("a", 1)], size)


@pytest.mark.parametrize("name", ["llama-3", "m.v2", "a_b+c", "7b"])
def test_should_accept_plain_names(name: str) -> None:
    assert check_name("model name", name) == name


@pytest.mark.parametrize("name", ["", "-x", "a/b", "a..b", "a b", "x" * 200, "é"])
def test_should_refuse_names_that_are_not_plain(name: str) -> None:
    with pytest.raises(LayoutError):
        check_name("model name", name)


@pytest.mark.parametrize("total,expected", [
    (256 * MiB, 4 * MiB), (64 * 1024 * MiB, 64 * MiB), (500 * 1024 * MiB, 64 * MiB), (10 * MiB, 1 * MiB),
])
def test_auto_piece_size_should_give_enough_pieces(total: int, expected: int) -> None:
    assert auto_piece_size(total) == expected


@pytest.mark.parametrize("text,expected", [
    ("64MiB", 64 * MiB), ("1GiB", 1 << 30), ("100MB", 100_000_000), ("4k", 4000), ("17", 17), ("1.5KiB", 1536),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "x", "3x", "-1", "1 parsec"])
def test_parse_size_should_refuse_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)
