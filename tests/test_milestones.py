"""Progress milestones for service logs."""

from __future__ import annotations

import pytest

from common.milestones import Milestones


@pytest.mark.parametrize(("total", "ticks", "logged"), [
    (100, [5, 10, 11, 19, 20, 55, 100, 100], [None, 10, None, None, 20, 50, 100, None]),
    (1000, [0, 999, 1000], [None, 90, 100]),
    (0, [0, 5], [None, None]),  # nothing to do: nothing to say
    (100, [100], [100]),  # a job that finishes between two ticks says so once
    (3, [1, 2, 3], [30, 60, 100]),
])
def test_each_tenth_is_logged_once(total: int, ticks: list[int], logged: list[int | None]) -> None:
    m = Milestones(total)
    assert [m.passed(t) for t in ticks] == logged
