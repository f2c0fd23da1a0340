"""Which pieces the seedbox asks of external storage next (pure, table-driven)."""

from __future__ import annotations

import pytest

from seedbox.seeder import next_pieces


@pytest.mark.parametrize("queue,availability,n,expected", [
    ([0, 1, 2, 3, 4], [], 2, [0, 1]),                          # fresh swarm, no peers yet: index order
    ([0, 1, 2, 3, 4], [0, 0, 0, 0, 0], 3, [0, 1, 2]),          # peers, none holding anything
    ([0, 1, 2, 3, 4], [2, 2, 0, 1, 0], 3, [2, 4, 3]),          # after a restart: what nobody has first
    ([3, 4], [5, 5, 5, 1, 0], 8, [4, 3]),                      # fewer left than room
    ([], [1, 2], 4, []),
])
def test_rarest_to_the_swarm_first_then_index_order(queue: list[int], availability: list[int], n: int,
                                                    expected: list[int]) -> None:
    assert next_pieces(queue, availability, n) == expected
