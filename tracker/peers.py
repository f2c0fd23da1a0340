"""Which peers an announcing host is told about: rack-aware. Pure: the RNG is passed in.

Goal: each piece crosses each rack uplink about once. So each rack has gateways: its first
``seedbox_per_rack`` downloaders (by when they joined; 1 by default). A host is told

1. about the seedbox only if it is a gateway of its rack;
2. about peers in its own rack, those that already have pieces first;
3. if it is a gateway, also about other racks' gateways, then their seeds (``remote_share`` of
   its list, at least one): pieces move between racks gateway to gateway (or from a seed, which
   only uploads), and every rack stays connected to the rest of the swarm. Other hosts hear of
   no peer outside their rack, unless their rack has no other peer at all (then the nearest ones
   elsewhere).

A stripe of a striped model (``common/torrent.py``) is a swarm of its own whose gateway in a rack
is the rack's registered host at the stripe's index (``stripe_gateways``), so a rack's ingress is
spread over as many hosts as there are stripes (up to the rack's size), each bringing in its own
share of the pieces and passing it on inside the rack.

The seedbox itself is told about the gateways of each rack, the same peers that are told about
it, so connections from either side agree. A gateway that completes, stops or expires hands the
role to its rack's next downloader at that host's next announce.

Measured in the emulated datacenter (``tools/bench/distribute.py``): bytes into racks went from
2.3x the minimum (two first downloaders per rack, lists filled from other racks up to numwant) to
1.03x. ``Policy(gateways=False)`` keeps that older rule (``remote_share`` of ``numwant`` from other
racks, the rest filled from wherever there are peers), which is also what a flat network gets.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Collection, Mapping, Sequence
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
    host: int = -1  # the registered host's id (stripes: who brings which stripe in)


class Asker(NamedTuple):
    location: Location
    first_seen: float
    seed: bool = False
    seedbox: bool = False
    host: int = -1


@dataclass(frozen=True)
class Stripe:
    """A swarm that is one stripe of a striped version: which one, the registered client hosts of
    each rack (ids, in registration order), and whether a stripe whose host is absent may be
    handed to another yet (``now`` past ``settle`` seconds since the rack's first downloader)."""

    index: int
    rack_hosts: Mapping[Location, Sequence[int]]
    now: float = 0.0
    settle: float = 0.0


@dataclass(frozen=True)
class Policy:
    remote_share: float = 0.2
    seedbox_per_rack: int = 1
    gateways: bool = True
    tiers: tuple[str, ...] = field(default=("rack", "pod", "dc", "elsewhere"))


def _early_downloaders(candidates: Sequence[Candidate[K]], per_rack: int) -> list[Candidate[K]]:
    by_rack: dict[Location, list[Candidate[K]]] = {}
    for c in sorted(candidates, key=lambda c: c.first_seen):
        if not c.seed and not c.seedbox:
            by_rack.setdefault(c.location, []).append(c)
    return [c for rack in by_rack.values() for c in rack[:per_rack]]


def stripe_gateways(registered: Sequence[int], downloading: Collection[int], stripe: int, per_rack: int,
                    settled: bool) -> list[int]:
    """The hosts through which ``stripe`` enters a rack: the rack's registered hosts (in
    registration order) from position ``stripe`` on, ``per_rack`` of them, each while it is
    downloading. A missing one (not announced yet, finished, gone) is stood in for by the next
    downloading host in that order, but only once the rack is ``settled``: at a deployment's start
    the rack's hosts announce one after the other, and a host given a stripe's role for the
    seconds until its owner announces keeps the connections it made then (libtorrent keeps them:
    seen as 1.2-1.3x the bytes into racks), so it waits instead. By registration order, not by
    announce order, so that every stripe's swarm agrees and a host that goes moves only its own
    stripes. Downloading hosts the rack's list does not hold (registered since) come last."""
    known = set(registered)  # once, not per host: the index is rebuilt every second per stripe
    order = list(registered) + sorted(h for h in downloading if h not in known)
    m = len(order)
    if m == 0:
        return []
    owners = [order[(stripe + j) % m] for j in range(min(per_rack, m))]
    chosen = [h for h in owners if h in downloading]
    if settled and len(chosen) < len(owners):
        for j in range(m):
            h = order[(stripe + j) % m]
            if len(chosen) == len(owners):
                break
            if h in downloading and h not in chosen:
                chosen.append(h)
    return chosen


class _Tier(NamedTuple, Generic[K]):
    """The candidates at one distance from an asker, by what they hold."""

    holders: list[K]  # seeds and partial
    partial: list[K]
    empty: list[K]


class SwarmIndex(Generic[K]):
    """One swarm's candidates arranged once so that each announce is answered by sampling, not sorting.

    A tracker builds one per swarm when the swarm's membership changes and asks it many times:
    the per-announce cost is about ``numwant`` draws, not a sort of the whole swarm.
    """

    def __init__(self, candidates: Sequence[Candidate[K]], policy: Policy = Policy(), stripe: Stripe | None = None
                 ) -> None:
        self.policy = policy
        self.stripe = stripe
        self.candidates = list(candidates)
        self.by_key = {c.key: c for c in self.candidates}
        self.seeds = sum(1 for c in self.candidates if c.seed)
        self._seedboxes = [c.key for c in self.candidates if c.seedbox]
        self._gateway_hosts: dict[Location, list[int]] = {}
        if stripe is None:
            self._early = _early_downloaders(self.candidates, policy.seedbox_per_rack)
        else:
            self._early = self._stripe_gateways(stripe)
        self._joined: dict[Location, list[float]] = {}  # downloaders' first-seen times, per rack
        for c in self.candidates:
            if not c.seed and not c.seedbox:
                self._joined.setdefault(c.location, []).append(c.first_seen)
        for times in self._joined.values():
            times.sort()
        # Candidates (seedboxes aside) by exact location, then each asker location's tiers made
        # from those groups on demand: a fleet's swarm has hundreds of racks, and shuffling every
        # tier of every rack's view at each rebuild made a 10,000-host simulation's first seconds
        # hours long; most askers need their own rack's tier only.
        self._at: dict[Location, _Tier[K]] = {}
        for c in self.candidates:
            if c.seedbox:
                continue
            group = self._at.get(c.location)
            if group is None:
                group = self._at[c.location] = _Tier([], [], [])
            if c.has_pieces or c.seed:
                group.holders.append(c.key)
                if not c.seed:
                    group.partial.append(c.key)
            else:
                group.empty.append(c.key)
        self._sizes: dict[Location, list[tuple[int, int, int]]] = {}
        self._tiers: dict[tuple[Location, int], _Tier[K]] = {}
        self._elsewhere: dict[Location, list[K]] = {}

    def _stripe_gateways(self, stripe: Stripe) -> list[Candidate[K]]:
        racks: dict[Location, dict[int, Candidate[K]]] = {}
        for c in sorted(self.candidates, key=lambda c: c.first_seen):
            if not c.seed and not c.seedbox:
                racks.setdefault(c.location, {}).setdefault(c.host, c)
        early = []
        for location, downloading in racks.items():
            first = min(c.first_seen for c in downloading.values())
            hosts = stripe_gateways(stripe.rack_hosts.get(location, ()), downloading.keys(), stripe.index,
                                    self.policy.seedbox_per_rack, stripe.now - first >= stripe.settle)
            self._gateway_hosts[location] = hosts
            early += [downloading[h] for h in hosts]
        return early

    @property
    def gateways(self) -> list[K]:
        """Each rack's gateways: its ``seedbox_per_rack`` earliest downloaders (a stripe's: ``stripe_gateways``)."""
        return [c.key for c in self._early]

    def gateways_by_rack(self) -> dict[Location, list[K]]:
        racks: dict[Location, list[K]] = {}
        for c in self._early:
            racks.setdefault(c.location, []).append(c.key)
        return racks

    def tiers(self, location: Location, rng: random.Random | None = None) -> list[_Tier[K]]:
        """Candidates (seedboxes aside) by distance from ``location``: rack, pod, datacenter,
        elsewhere; each list in a random order (``rng``), so that any run of it is a random pick."""
        return [self.tier(location, d, rng) for d in range(4)]

    def tier(self, location: Location, distance: int, rng: random.Random | None = None) -> _Tier[K]:
        """The candidates at ``distance`` from ``location`` (``tiers``), made once per index."""
        tier = self._tiers.get((location, distance))
        if tier is None:
            tier = _Tier([], [], [])
            for where, group in self._at.items():
                if location.distance(where) == distance:
                    tier.holders.extend(group.holders)
                    tier.partial.extend(group.partial)
                    tier.empty.extend(group.empty)
            if rng is not None:
                for keys in tier:
                    rng.shuffle(keys)
            self._tiers[(location, distance)] = tier
        return tier

    def sizes(self, location: Location) -> list[tuple[int, int, int]]:
        """How many holders, partial and empty candidates are at each distance from ``location``,
        without making the tiers."""
        sizes = self._sizes.get(location)
        if sizes is None:
            counts = [[0, 0, 0] for _ in range(4)]
            for where, group in self._at.items():
                row = counts[location.distance(where)]
                row[0] += len(group.holders)
                row[1] += len(group.partial)
                row[2] += len(group.empty)
            sizes = self._sizes[location] = [(h, p, e) for h, p, e in counts]
        return sizes

    def _gateways_elsewhere(self, location: Location, rng: random.Random) -> list[K]:
        """What a gateway may connect to outside its rack: the other racks' gateways, then their
        seeds (which only upload: a piece from them crosses into this rack once, for the rack),
        each in a random order (made once per location)."""
        keys = self._elsewhere.get(location)
        if keys is None:
            gateways = [c.key for c in self._early if c.location != location]
            seeds = [c.key for c in self.candidates if c.seed and not c.seedbox and c.location != location]
            rng.shuffle(gateways)
            rng.shuffle(seeds)
            keys = self._elsewhere[location] = gateways + seeds
        return keys

    def seedbox_offered(self, asker: Asker) -> bool:
        """Whether ``asker`` is one of its rack's gateways (who get the seedbox)."""
        if asker.seed:
            return False
        if self.stripe is not None:
            if asker.location in self._gateway_hosts:
                return asker.host in self._gateway_hosts[asker.location]
            # Its rack's first downloader, not in the index yet: as if alone (the rack not settled).
            return asker.host in stripe_gateways(self.stripe.rack_hosts.get(asker.location, ()), {asker.host},
                                                 self.stripe.index, self.policy.seedbox_per_rack, False)
        ahead = bisect.bisect_left(self._joined.get(asker.location, ()), asker.first_seen)
        return ahead < self.policy.seedbox_per_rack

    def select(self, asker: Asker, numwant: int, rng: random.Random, exclude: K | None = None) -> list[K]:
        """The keys of at most ``numwant`` peers for ``asker``, never ``exclude`` (the asker's own key)."""
        if numwant <= 0:
            return []
        if asker.seedbox:
            early = [c.key for c in self._early if c.key != exclude]
            rng.shuffle(early)
            return early[:numwant]
        gateway = self.seedbox_offered(asker)
        picked = [k for k in self._seedboxes if k != exclude][:numwant] if gateway else []
        # Within a distance: peers with pieces first, then empty ones; at random among equals.
        def group(distance: int) -> list[list[K]]:
            t = self.tier(asker.location, distance, rng)
            return [t.partial, t.empty] if asker.seed else [t.holders, t.empty]

        sizes = [(p + e) if asker.seed else (h + e) for h, p, e in self.sizes(asker.location)]
        own = self.by_key.get(exclude) if exclude is not None else None
        if own is not None:
            exclude = own.key  # the index's own object: _draw compares by identity
            if not own.seedbox and not (asker.seed and own.seed):
                sizes[asker.location.distance(own.location)] -= 1
        room = numwant - len(picked)
        if self.policy.gateways and (gateway or sizes[0] > 0):
            others = self._gateways_elsewhere(asker.location, rng) if gateway else []
            want_remote = min(len(others), max(1, math.ceil(self.policy.remote_share * room))) if room > 0 else 0
            picked += _draw(group(0), min(sizes[0], room - want_remote), rng, exclude)
            return picked + _draw([others], want_remote, rng, exclude)
        if self.stripe is not None and self.policy.gateways:
            # Alone in its rack and not the stripe's way in (yet): nobody. Peers elsewhere would stay
            # connected once its rack-mates come and bring the stripe in a second time.
            return picked
        remote = sum(sizes[1:])
        want_remote = min(remote, math.ceil(self.policy.remote_share * room)) if room > 0 else 0
        take_local = min(sizes[0], max(room - want_remote, 0))
        picked += _draw(group(0), take_local, rng, exclude)
        need = room - take_local
        for distance in range(1, 4):
            if need <= 0:
                break
            got = _draw(group(distance), need, rng, exclude)
            picked += got
            need -= len(got)
        return picked


def _draw(groups: list[list[K]], n: int, rng: random.Random, exclude: K | None) -> list[K]:
    """Up to ``n`` keys, from the first group first, at random within a group, never ``exclude``
    (compared by identity: it is the index's own key object).

    The groups are in a random order already (``SwarmIndex.tiers``), so a run of them from a random
    start is a random pick: one draw per group instead of one per key (``random.sample`` was a
    quarter of an announce's CPU). Every key is equally likely; keys next to each other in the
    order are listed together more often than by chance, and the order changes whenever the swarm
    does (the index is rebuilt)."""
    out: list[K] = []
    for group in groups:
        want = n - len(out)
        if want <= 0:
            break
        size = len(group)
        if size <= want + 1:
            keys = [k for k in group if k is not exclude]
            if len(keys) > want:
                del keys[rng.randrange(len(keys))]
        else:  # one spare, in case it is the asker itself
            start = rng.randrange(size)
            end = start + want + 1
            run = group[start:end] if end <= size else group[start:] + group[:end - size]
            keys = [k for k in run if k is not exclude]
        out += keys[:want]
    return out


def seedbox_offered(asker: Asker, candidates: Sequence[Candidate[K]], policy: Policy) -> bool:
    """Whether ``asker`` is one of its rack's first downloaders (who get the seedbox)."""
    return SwarmIndex(candidates, policy).seedbox_offered(asker)


def select_peers(asker: Asker, candidates: Sequence[Candidate[K]], numwant: int, rng: random.Random,
                 policy: Policy = Policy()) -> list[K]:
    """The keys of at most ``numwant`` peers for ``asker`` (which must not be in ``candidates``)."""
    return SwarmIndex(candidates, policy).select(asker, numwant, rng)
