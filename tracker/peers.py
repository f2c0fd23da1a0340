"""Which peers an announcing host is told about: rack-aware. Pure: the RNG is passed in.

Goal: each piece crosses each rack uplink about once. So a host is told

1. about the seedbox only if it is one of the first ``seedbox_per_rack`` downloaders of its rack
   (by when they joined): those few pull from the seedbox, the rest of the rack pulls from them;
2. mostly about peers in its own rack, those that already have pieces first;
3. about a few peers outside its rack (``remote_share`` of the list, same pod first), so that
   every rack stays connected to the rest of the swarm and pieces keep moving between racks.

The seedbox itself is told about the first downloaders of each rack, the same peers that are told
about it, so connections from either side agree.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

K = TypeVar("K")


class Location(NamedTuple):
    """Where a host sits: ``dc|pod|rack``. Missing leading parts are empty (one flat network).

    Tuples, not dataclasses, for these per-peer records: the announce path builds and compares
    thousands of them a second.
    """

    dc: str = ""
    pod: str = ""
    rack: str = ""

    @classmethod
    def parse(cls, text: str) -> Location:
        parts = [p.strip() for p in text.split("|")] if text else []
        dc, pod, rack = ([""] * 3 + parts)[-3:]
        return cls(dc, pod, rack)

    def distance(self, other: Location) -> int:
        """0 same rack, 1 same pod, 2 same datacenter, 3 elsewhere."""
        if self.dc != other.dc:
            return 3
        if self.pod != other.pod:
            return 2
        return 0 if self.rack == other.rack else 1

    def __str__(self) -> str:
        return "|".join((self.dc, self.pod, self.rack))


class Candidate(NamedTuple, Generic[K]):
    key: K
    location: Location
    has_pieces: bool
    seed: bool = False
    seedbox: bool = False
    first_seen: float = 0.0


class Asker(NamedTuple):
    location: Location
    first_seen: float
    seed: bool = False
    seedbox: bool = False


@dataclass(frozen=True)
class Policy:
    remote_share: float = 0.2
    seedbox_per_rack: int = 2
    tiers: tuple[str, ...] = field(default=("rack", "pod", "dc", "elsewhere"))


def _early_downloaders(candidates: Sequence[Candidate[K]], per_rack: int) -> list[Candidate[K]]:
    by_rack: dict[Location, list[Candidate[K]]] = {}
    for c in sorted(candidates, key=lambda c: c.first_seen):
        if not c.seed and not c.seedbox:
            by_rack.setdefault(c.location, []).append(c)
    return [c for rack in by_rack.values() for c in rack[:per_rack]]


def seedbox_offered(asker: Asker, candidates: Sequence[Candidate[K]], policy: Policy) -> bool:
    """Whether ``asker`` is one of its rack's first downloaders (who get the seedbox)."""
    if asker.seed:
        return False
    ahead = sum(
        1 for c in candidates
        if c.location == asker.location and not c.seed and not c.seedbox and c.first_seen < asker.first_seen
    )
    return ahead < policy.seedbox_per_rack


def select_peers(asker: Asker, candidates: Sequence[Candidate[K]], numwant: int, rng: random.Random,
                 policy: Policy = Policy()) -> list[K]:
    """The keys of at most ``numwant`` peers for ``asker`` (which must not be in ``candidates``)."""
    if numwant <= 0:
        return []
    if asker.seedbox:
        chosen = _early_downloaders(candidates, policy.seedbox_per_rack)
        rng.shuffle(chosen)
        return [c.key for c in chosen[:numwant]]
    picked: list[K] = []
    if seedbox_offered(asker, candidates, policy):
        picked += [c.key for c in candidates if c.seedbox][:numwant]
    # Within a distance, peers with pieces first, then at random.
    ranked = sorted(
        ((asker.location.distance(c.location), not c.has_pieces, rng.random(), c) for c in candidates
         if not c.seedbox and not (asker.seed and c.seed)),
        key=lambda t: t[:3],
    )
    local = [t[3] for t in ranked if t[0] == 0]
    remote = [t[3] for t in ranked if t[0] > 0]
    room = numwant - len(picked)
    want_remote = min(len(remote), math.ceil(policy.remote_share * room)) if room > 0 else 0
    take_local = local[: max(room - want_remote, 0)]
    take_remote = remote[: room - len(take_local)]
    return picked + [c.key for c in take_local + take_remote]
