"""Rack-aware peer selection, table-driven with a seeded RNG."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.peers import (
    Asker,
    Candidate,
    Location,
    Policy,
    Stripe,
    SwarmIndex,
    seedbox_offered,
    select_peers,
    stripe_gateways,
)

R1 = Location("dc1", "pod1", "r1")
R2 = Location("dc1", "pod1", "r2")
P2 = Location("dc1", "pod2", "r9")
DC2 = Location("dc2", "pod1", "r1")


def cand(key: str, loc: Location, pieces: bool = False, *, seed: bool = False, seedbox: bool = False,
         t: float = 0.0) -> Candidate[str]:
    return Candidate(key, loc, pieces or seed, seed, seedbox, t)


@pytest.mark.parametrize("text,expected", [
    ("dc1|pod1|r1", R1), ("r7", Location("", "", "r7")), ("pod|r", Location("", "pod", "r")), ("", Location()),
    (" dc1 | pod1 | r1 ", R1),
])
def test_location_parse(text: str, expected: Location) -> None:
    assert Location.parse(text) == expected


@pytest.mark.parametrize("a,b,d", [(R1, R1, 0), (R1, R2, 1), (R1, P2, 2), (R1, DC2, 3)])
def test_location_distance(a: Location, b: Location, d: int) -> None:
    assert a.distance(b) == d == b.distance(a)


SWARM = [
    cand("seedbox", Location("dc1", "pod0", "seed"), seed=True, seedbox=True),
    cand("r1-early-a", R1, True, t=1), cand("r1-early-b", R1, True, t=2), cand("r1-late", R1, t=5),
    cand("r1-empty", R1, t=6), cand("r2-a", R2, True, t=1), cand("r2-b", R2, t=3), cand("p2-a", P2, True, t=2),
    cand("dc2-a", DC2, True, t=1),
]

CASES = [
    # (id, asker, numwant, must include, may fill the rest from)
    ("late r1 host: own rack with pieces first, one remote, no seedbox",
     Asker(R1, first_seen=9), 4, {"r1-early-a", "r1-early-b", "r2-a"}, {"r1-late", "r1-empty"}),
    ("second r1 host gets the seedbox", Asker(R1, first_seen=1.5), 3, {"seedbox", "r2-a"},
     {"r1-early-a", "r1-early-b"}),
    ("first host of a new rack gets the seedbox and same-pod peers with pieces",
     Asker(Location("dc1", "pod1", "r3"), first_seen=9), 3, {"seedbox"}, {"r1-early-a", "r1-early-b", "r2-a"}),
    ("everyone, when numwant allows", Asker(Location("dc1", "pod1", "r3"), first_seen=0), 30,
     {c.key for c in SWARM}, set()),
    ("numwant 0", Asker(R1, first_seen=9), 0, set(), set()),
]


@pytest.mark.parametrize("asker,numwant,must,may", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_select_peers_sharing_and_filling(asker: Asker, numwant: int, must: set[str], may: set[str]) -> None:
    got = select_peers(asker, SWARM, numwant, random.Random(7), FILL)
    assert len(got) == len(set(got)) == min(numwant, len(SWARM))
    assert must <= set(got) <= must | may
    # apart from the seedbox, the list runs from near to far, and within a distance pieces first
    rank = [(by_key[k].location.distance(asker.location), not by_key[k].has_pieces) for k in got if k != "seedbox"]
    assert rank == sorted(rank)


by_key = {c.key: c for c in SWARM}
FILL = Policy(seedbox_per_rack=2, gateways=False)  # the rule before gateways, still the flat network's

GATEWAY_CASES = [
    # (id, asker, numwant, expected exactly, or None: check only "must" and "may")
    ("r1's gateway: the seedbox, its rack, the other racks' gateways", Asker(R1, first_seen=0.5), 50,
     {"seedbox", "r1-early-a", "r1-early-b", "r1-late", "r1-empty", "r2-a", "p2-a", "dc2-a"}),
    ("a later r1 host: its own rack only", Asker(R1, first_seen=9), 50,
     {"r1-early-a", "r1-early-b", "r1-late", "r1-empty"}),
    ("r1's gateway with room for two: the seedbox and one other gateway", Asker(R1, first_seen=0.5), 2, None),
    ("alone in a new rack: its gateway", Asker(Location("dc1", "pod1", "r3"), first_seen=9), 50,
     {"seedbox", "r1-early-a", "r2-a", "p2-a", "dc2-a"}),
]


@pytest.mark.parametrize("asker,numwant,expected", [c[1:] for c in GATEWAY_CASES], ids=[c[0] for c in GATEWAY_CASES])
def test_select_peers_through_gateways(asker: Asker, numwant: int, expected: set[str] | None) -> None:
    got = select_peers(asker, SWARM, numwant, random.Random(7), Policy())
    assert len(got) == len(set(got))
    if expected is not None:
        assert set(got) == expected
    else:
        assert len(got) == 2 and "seedbox" in got and set(got) - {"seedbox"} <= {"r2-a", "p2-a", "dc2-a"}


def test_a_host_with_nobody_in_its_rack_hears_of_the_nearest_peers_elsewhere() -> None:
    swarm = [cand("r2-a", R2, True, t=1), cand("r2-b", R2, t=3), cand("p2-a", P2, True, t=2)]
    assert set(select_peers(Asker(R2, first_seen=5), swarm, 50, random.Random(1), Policy())) == {"r2-a", "r2-b"}
    # A seed alone in r1 is no gateway (seeds never are) and has no rack peers: same pod first.
    alone = select_peers(Asker(R1, first_seen=0, seed=True), swarm, 50, random.Random(1), Policy())
    assert set(alone[:2]) == {"r2-a", "r2-b"} and alone[2:] == ["p2-a"]


def test_the_seedbox_is_told_about_the_first_downloaders_of_each_rack() -> None:
    got = select_peers(Asker(Location("dc1", "pod0", "seed"), 0, seed=True, seedbox=True),
                       SWARM, 50, random.Random(1), Policy(seedbox_per_rack=2))
    assert set(got) == {"r1-early-a", "r1-early-b", "r2-a", "r2-b", "p2-a", "dc2-a"}
    gateways = select_peers(Asker(Location("dc1", "pod0", "seed"), 0, seed=True, seedbox=True),
                            SWARM, 50, random.Random(1), Policy())
    assert set(gateways) == {"r1-early-a", "r2-a", "p2-a", "dc2-a"}


def test_a_seed_is_not_told_about_other_seeds_or_offered_the_seedbox() -> None:
    swarm = [*SWARM, cand("r1-seed", R1, seed=True, t=0.5)]
    for policy in (Policy(), FILL):
        got = select_peers(Asker(R1, first_seen=0.1, seed=True), swarm, 50, random.Random(3), policy)
        assert "seedbox" not in got and "r1-seed" not in got


def test_seedbox_is_offered_to_the_first_k_of_each_rack_only() -> None:
    offered = [seedbox_offered(Asker(R1, first_seen=t), SWARM, Policy(seedbox_per_rack=2)) for t in (0, 1.5, 3)]
    assert offered == [True, True, False]


@pytest.mark.parametrize("share,numwant,remote", [(0.0, 5, 0), (0.2, 5, 1), (0.5, 4, 2), (1.0, 4, 4)])
def test_remote_share_bounds_the_peers_from_other_racks(share: float, numwant: int, remote: int) -> None:
    swarm = [cand(f"l{i}", R1, True, t=i) for i in range(10)] + [cand(f"r{i}", R2, True, t=i) for i in range(10)]
    got = select_peers(Asker(R1, first_seen=99), swarm, numwant, random.Random(5),
                       Policy(remote_share=share, gateways=False))
    assert len(got) == numwant
    assert sum(k.startswith("r") for k in got) == remote


def test_sampling_is_spread_over_equal_peers() -> None:
    swarm = [cand(f"l{i}", R1, True, t=i) for i in range(20)]
    counts: dict[str, int] = {}
    rng = random.Random(11)
    for _ in range(400):
        for k in select_peers(Asker(R1, first_seen=99), swarm, 5, rng, FILL):
            counts[k] = counts.get(k, 0) + 1
    assert len(counts) == 20 and max(counts.values()) < 3 * min(counts.values())


locations = st.sampled_from([R1, R2, P2, DC2, Location("dc1", "pod1", "r3")])
candidates = st.lists(
    st.builds(lambda i, loc, pieces, seed, box, t: Candidate(f"p{i}", loc, pieces or seed, seed, box, t),
              st.integers(), locations, st.booleans(), st.booleans(), st.booleans(),
              st.floats(0, 100, allow_nan=False)),
    max_size=40, unique_by=lambda c: c.key)


@settings(max_examples=300, deadline=None)
@given(candidates, locations, st.floats(0, 100, allow_nan=False), st.booleans(), st.integers(0, 60),
       st.floats(0, 1), st.integers(0, 2**32))
def test_index_answers_like_the_asker_was_not_there(swarm: list[Candidate[str]], loc: Location, first: float,
                                                    seed: bool, numwant: int, share: float, seed_rng: int) -> None:
    # The tracker keeps the asker in the swarm's index and excludes it by key: the answer must
    # keep every invariant of a selection from the swarm without the asker.
    policy = Policy(remote_share=share, seedbox_per_rack=2, gateways=False)
    asker = Asker(loc, first, seed=seed)
    me = Candidate("me", loc, seed, seed, False, first)
    got = SwarmIndex([*swarm, me], policy).select(asker, numwant, random.Random(seed_rng), exclude="me")
    eligible = [c for c in swarm if not (c.seedbox or (seed and c.seed))]
    boxes = [c for c in swarm if c.seedbox] if seedbox_offered(asker, swarm, policy) else []
    keys = {c.key: c for c in swarm}
    assert "me" not in got and len(got) == len(set(got))
    assert len(got) == min(numwant, len(eligible) + len(boxes))
    assert {k for k in got if keys[k].seedbox} <= {c.key for c in boxes}
    rest = [keys[k] for k in got if not keys[k].seedbox]
    assert [(loc.distance(c.location) > 0) for c in rest] == sorted(loc.distance(c.location) > 0 for c in rest)
    local = [c for c in rest if loc.distance(c.location) == 0]
    assert [not c.has_pieces for c in local] == sorted(not c.has_pieces for c in local)
    # a local peer is left out only to make room for the remote share
    n_remote = len(rest) - len(local)
    if len(local) < sum(1 for c in eligible if loc.distance(c.location) == 0):
        assert n_remote <= max(math.ceil(share * (numwant - len([k for k in got if keys[k].seedbox]))), 0)


@settings(max_examples=300, deadline=None)
@given(candidates, locations, st.floats(0, 100, allow_nan=False), st.booleans(), st.integers(0, 60),
       st.floats(0, 1), st.integers(0, 2**32))
def test_gateway_lists_keep_racks_apart(swarm: list[Candidate[str]], loc: Location, first: float, seed: bool,
                                        numwant: int, share: float, seed_rng: int) -> None:
    index = SwarmIndex([*swarm, Candidate("me", loc, seed, seed, False, first)], Policy(remote_share=share))
    asker = Asker(loc, first, seed=seed)
    got = index.select(asker, numwant, random.Random(seed_rng), exclude="me")
    keys = {c.key: c for c in swarm}
    assert "me" not in got and len(got) == len(set(got)) and len(got) <= numwant
    gateway = index.seedbox_offered(asker)
    assert gateway or not any(keys[k].seedbox for k in got)
    local = [c for c in swarm if not c.seedbox and not (seed and c.seed) and loc.distance(c.location) == 0]
    remote = {k for k in got if not keys[k].seedbox and loc.distance(keys[k].location) > 0}
    if gateway:  # only other racks' gateways and seeds, and at least one when there is any and room
        elsewhere = {c.key for c in index._early if c.location != loc} | {
            c.key for c in swarm if c.seed and not c.seedbox and c.location != loc}
        assert remote <= elsewhere
        if elsewhere and numwant > sum(1 for k in got if keys[k].seedbox):
            assert remote
    elif local:  # a rack with peers keeps to itself
        assert not remote and len(got) == min(numwant, len(local))


@pytest.mark.parametrize("registered,downloading,stripe,per_rack,settled,expected", [
    ([1, 2, 3], {1, 2, 3}, 0, 1, False, [1]),  # stripe k: the rack's k-th registered host
    ([1, 2, 3], {1, 2, 3}, 2, 1, False, [3]),
    ([1, 2, 3], {1, 2, 3}, 4, 1, False, [2]),  # more stripes than hosts: round the rack again
    ([1, 2, 3], {1}, 1, 1, False, []),  # its host has not announced: the stripe waits for it...
    ([1, 2, 3], {1}, 1, 1, True, [1]),  # ...until the rack settles, then the next downloader stands in
    ([1, 2, 3], {1, 3}, 1, 1, True, [3]),  # its host gone: the next one in registration order
    ([1, 2, 3], {1, 2, 3}, 1, 2, False, [2, 3]),  # two gateways a stripe
    ([1, 2, 3], {1, 2}, 1, 2, True, [2, 1]),
    ([], {7, 5}, 1, 1, False, [7]),  # none registered (yet, in this worker): by host id
    ([1, 2], {1, 2, 9}, 2, 1, False, [9]),  # registered since the list was read: last
    ([1, 2, 3], set(), 0, 1, True, []),
])
def test_a_stripe_enters_a_rack_through_its_registered_host(registered: list[int], downloading: set[int],
                                                            stripe: int, per_rack: int, settled: bool,
                                                            expected: list[int]) -> None:
    assert stripe_gateways(registered, downloading, stripe, per_rack, settled) == expected


def test_each_stripe_enters_a_rack_through_its_own_host() -> None:
    rack = [Candidate(f"r1-{i}", R1, False, first_seen=float(3 - i), host=i) for i in range(3)] + [
        Candidate(f"r2-{i}", R2, False, first_seen=float(i), host=10 + i) for i in range(3)]
    hosts = {R1: [0, 1, 2], R2: [10, 11, 12]}
    box = Asker(Location("dc1", "pod0", "seed"), 0, seed=True, seedbox=True)

    def index(k: int, swarm: list[Candidate[str]] = rack, now: float = 0.0) -> SwarmIndex[str]:
        return SwarmIndex(swarm, Policy(), Stripe(k, hosts, now=now, settle=5.0))

    # By registration, whatever the order they announced in (rack1's in reverse).
    told = [set(index(k).select(box, 50, random.Random(1))) for k in range(3)]
    assert told == [{"r1-0", "r2-0"}, {"r1-1", "r2-1"}, {"r1-2", "r2-2"}]
    for k in range(3):
        offered = [i for i in range(3) if index(k).seedbox_offered(Asker(R1, first_seen=float(3 - i), host=i))]
        assert offered == [k]
    # Stripe 1's host in rack1 gone: nobody stands in until the rack has been there 5 s, then the next.
    without = [c for c in rack if c.key != "r1-1"]
    assert set(index(1, without, now=4.0).select(box, 50, random.Random(1))) == {"r2-1"}
    assert set(index(1, without, now=9.0).select(box, 50, random.Random(1))) == {"r1-2", "r2-1"}
    # A rack's first host, alone: only its own stripe, not every stripe's role (and their connections).
    alone = [Candidate("r2-0", R2, False, first_seen=0.0, host=10)]
    assert [index(k, alone).seedbox_offered(Asker(R2, 0.0, host=10)) for k in range(3)] == [True, False, False]
