"""Which peers an announcing host is told about. Pure: the RNG is passed in."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

P = TypeVar("P")


def select_peers(candidates: Sequence[P], numwant: int, rng: random.Random) -> list[P]:
    """A uniform sample of at most ``numwant`` candidates (the asker already excluded).

    Sampling instead of the first N spreads load: every peer is equally likely to be handed out.
    """
    if numwant <= 0:
        return []
    if len(candidates) <= numwant:
        picked = list(candidates)
        rng.shuffle(picked)
        return picked
    return rng.sample(list(candidates), numwant)
