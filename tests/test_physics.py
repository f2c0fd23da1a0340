"""The physical limit of a distribution (DESIGN.md), table-driven."""

from __future__ import annotations

import pytest

from tools.sim.physics import mbit, t_min

F = 1000.0


@pytest.mark.parametrize("source,uploads,downloads,uplink,expected", [
    (10.0, [100.0] * 4, [100.0] * 4, None, 100.0),     # the ingress link: F / u_s
    (1000.0, [100.0] * 4, [20.0] * 4, None, 50.0),     # the slowest download: F / min(d_i)
    (100.0, [10.0] * 10, [1000.0] * 10, None, 50.0),   # total upload: N F / (u_s + sum u_i)
    (1000.0, [1000.0] * 2, [1000.0] * 2, 5.0, 200.0),  # a rack uplink: F / r
], ids=["ingress", "slowest download", "total upload", "rack uplink"])
def test_t_min_is_the_tightest_bound(source: float, uploads: list[float], downloads: list[float],
                                     uplink: float | None, expected: float) -> None:
    assert t_min(F, source, uploads, downloads, uplink) == pytest.approx(expected)


def test_rates_and_bad_input() -> None:
    assert mbit(8) == 1e6
    with pytest.raises(ValueError):
        t_min(F, 1.0, [], [])
