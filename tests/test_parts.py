"""How a piece's read is split among the seedbox's lanes (seedbox/parts.py)."""

from __future__ import annotations

import pytest

from seedbox.parts import MIN_PART, part_bounds, part_slices

MiB = 1 << 20


@pytest.mark.parametrize(("length", "lanes", "expected"), [
    (64 * MiB, 4, [(0, 16 * MiB), (16 * MiB, 32 * MiB), (32 * MiB, 48 * MiB), (48 * MiB, 64 * MiB)]),
    (64 * MiB, 1, [(0, 64 * MiB)]),
    (MiB, 4, [(0, MiB // 4), (MiB // 4, MiB // 2), (MiB // 2, 3 * MiB // 4), (3 * MiB // 4, MiB)]),
    (MIN_PART * 2, 4, [(0, MIN_PART), (MIN_PART, 2 * MIN_PART)]),  # not below MIN_PART
    (MIN_PART - 1, 4, [(0, MIN_PART - 1)]),  # a short last piece: whole
    (1000, 3, [(0, 1000)]),
    (0, 4, [(0, 0)]),
    (10, 3, [(0, 3), (3, 6), (6, 10)]),  # uneven: nearly equal
])
def test_part_bounds(length: int, lanes: int, expected: list[tuple[int, int]]) -> None:
    min_part = 1 if length == 10 else MIN_PART
    assert part_bounds(length, lanes, min_part) == expected


@pytest.mark.parametrize("length", [1, 777, MIN_PART, 5 * MIN_PART + 3, 64 * MiB - 1])
@pytest.mark.parametrize("lanes", [1, 2, 3, 4, 16])
def test_parts_cover_the_piece_once_in_order(length: int, lanes: int) -> None:
    bounds = part_bounds(length, lanes)
    assert bounds[0][0] == 0 and bounds[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    assert len(bounds) <= lanes


FOUR = [(0, 10), (10, 20), (20, 30), (30, 40)]


@pytest.mark.parametrize(("bounds", "offset", "length", "expected"), [
    (FOUR, 0, 40, [(0, 0, 10), (1, 0, 10), (2, 0, 10), (3, 0, 10)]),  # the whole piece
    (FOUR, 12, 5, [(1, 2, 5)]),  # inside one part
    (FOUR, 8, 4, [(0, 8, 2), (1, 0, 2)]),  # across a boundary
    (FOUR, 10, 10, [(1, 0, 10)]),  # exactly one part
    (FOUR, 35, 5, [(3, 5, 5)]),  # the end
    (FOUR, 5, 0, []),
    ([(0, 40)], 16, 16, [(0, 16, 16)]),  # read whole
])
def test_part_slices(bounds: list[tuple[int, int]], offset: int, length: int,
                     expected: list[tuple[int, int, int]]) -> None:
    assert part_slices(bounds, offset, length) == expected
