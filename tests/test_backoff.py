"""Retry delays: exponential, capped, never zero, spread by jitter."""

from __future__ import annotations

import random

import pytest

from common.backoff import backoff_delay


@pytest.mark.parametrize("attempt,base,cap,low,high", [
    (1, 0.2, 5.0, 0.1, 0.2), (2, 0.2, 5.0, 0.2, 0.4), (5, 0.2, 5.0, 1.6, 3.2), (9, 0.2, 5.0, 2.5, 5.0),
    (1, 5.0, 600.0, 2.5, 5.0), (30, 5.0, 600.0, 300.0, 600.0), (0, 1.0, 10.0, 0.5, 1.0),
])
def test_delay_stays_within_half_and_all_of_the_capped_exponential(
        attempt: int, base: float, cap: float, low: float, high: float) -> None:
    rng = random.Random(attempt)
    delays = [backoff_delay(attempt, base, cap, rng) for _ in range(200)]
    assert all(low <= d <= high for d in delays)


def test_a_fleet_failing_together_retries_spread_out() -> None:
    delays = [backoff_delay(3, 1.0, 60.0, random.Random(host)) for host in range(100)]
    assert max(delays) - min(delays) > 1.0 and len({round(d, 3) for d in delays}) > 90
