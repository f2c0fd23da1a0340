"""Retry delays: exponential, capped, with jitter. Pure: the RNG is passed in.

"Equal jitter": half of the exponential delay is fixed, half is drawn at random, so retries never
come back at once yet a fleet that failed together (a storage blip, a tracker restart) spreads
its retries out instead of hammering the service in lockstep.
"""

from __future__ import annotations

import random


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)
