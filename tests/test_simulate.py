"""The simulator (tools/sim/simulate.py): pure, so checked against the physics it must respect and the
behaviours it claims to model, on small swarms."""

from __future__ import annotations

import random
import statistics

import pytest

from tools.sim.ceiling import HostCost
from tools.sim.physics import mbit
from tools.sim.simulate import Scenario, simulate, stripe_masks
from tracker.peers import Policy

MiB = 1 << 20


def scenario(**kw: object) -> Scenario:
    base: dict[str, object] = dict(racks=2, hosts_per_rack=3, size=32 * MiB, piece=1 * MiB, ingress=mbit(50),
                                   nic=mbit(200), uplink=mbit(100), interval=5.0, start=1.0)
    return Scenario(**(base | kw))  # type: ignore[arg-type]


@pytest.mark.parametrize("name,sc", [
    ("ingress-bound", scenario()),
    ("uplink-bound", scenario(ingress=mbit(400), uplink=mbit(20))),
    ("nic-bound", scenario(ingress=mbit(1000), nic=mbit(30), uplink=None)),
    ("upload-bound", scenario(racks=1, hosts_per_rack=8, ingress=mbit(1000), nic=mbit(40), uplink=None,
                              seedbox_nic=mbit(40))),
    ("plain", scenario(stock=True)),
])
def test_never_faster_than_the_physical_limit(name: str, sc: Scenario) -> None:
    result = simulate(sc, random.Random(3))
    assert result.t_min == sc.bound()
    assert result.seconds >= sc.start + result.t_min
    assert len(result.completion) == sc.hosts and max(result.completion) == result.seconds


def test_a_streamed_model_arrives_close_behind_the_ingress() -> None:
    sc = scenario(racks=1, uplink=None)
    result = simulate(sc, random.Random(1))
    ingest = sc.size / (sc.ingress * sc.efficiency)
    assert result.seconds <= sc.start + ingest + 10 * sc.piece / (sc.nic * sc.efficiency)  # a few pieces behind


def test_plain_bittorrent_waits_for_the_whole_model_first() -> None:
    streamed = simulate(scenario(), random.Random(1))
    plain = simulate(scenario(stock=True), random.Random(1))
    ingest = 32 * MiB / (mbit(50) * 0.96)
    assert plain.seconds >= 1.0 + ingest + 32 * MiB / (mbit(200) * 0.96)  # read it all, then send it
    assert plain.seconds > 1.5 * streamed.seconds


def test_rack_gateways_bring_each_piece_into_a_rack_about_once() -> None:
    # Means over a few seeds: one run of 16 hosts may send a few pieces twice into a rack.
    def cross_rack(policy: Policy) -> float:
        runs = [simulate(scenario(racks=4, hosts_per_rack=4, policy=policy), random.Random(seed)) for seed in range(4)]
        assert all(r.cross_rack_bytes >= 4 * 32 * MiB for r in runs)
        return sum(r.cross_rack_bytes for r in runs) / len(runs) / (4 * 32 * MiB)

    assert cross_rack(Policy()) <= 1.15
    assert cross_rack(Policy(gateways=False, seedbox_per_rack=1 << 30, remote_share=0.0)) > 1.5


def test_same_seed_same_result() -> None:
    a, b = (simulate(scenario(), random.Random(7)) for _ in range(2))
    assert a.completion == b.completion and a.cross_rack_bytes == b.cross_rack_bytes


def test_fewer_upload_slots_move_whole_pieces_through_a_big_rack_sooner() -> None:
    # A piece is forwarded only once whole: an upload split 32 ways makes every hop 32 pieces' time
    # on the NIC, so through a rack of 24 the default 4 slots (common.settings.UPLOAD_SLOTS) finish first.
    def seconds(slots: int) -> float:
        sc = scenario(racks=1, hosts_per_rack=24, ingress=mbit(200), uplink=None, slots=slots)
        return simulate(sc, random.Random(1)).seconds

    assert Scenario.slots == 4
    assert seconds(4) < 0.8 * seconds(32)


def test_while_streaming_no_host_outruns_the_ingress_and_no_uplink_exceeds_its_rate() -> None:
    sc = scenario(racks=2, hosts_per_rack=6, size=64 * MiB)
    streaming = simulate(sc, random.Random(1)).while_streaming(sc)
    assert set(streaming) == {"goodput_over_ingress", "seedbox_uplink_use", "gateway_uplink_use",
                              "gateway_goodput_over_ingress", "other_uplink_use"}
    assert 0 < streaming["goodput_over_ingress"] <= 1.05  # a host gets only what the seedbox has
    assert all(0 <= v <= 1.0 + 1e-6 for k, v in streaming.items() if k.endswith("uplink_use"))
    # The gateways hear of the seedbox and pass its pieces on: they upload more than the others.
    assert streaming["gateway_uplink_use"] > streaming["other_uplink_use"]
    assert simulate(scenario(stock=True), random.Random(1)).while_streaming(scenario(stock=True)) == {}


def test_stripes_bring_each_piece_into_a_rack_once_through_several_hosts_and_sooner() -> None:
    # Striped (Scenario.stripes): each of a rack's first hosts brings in its stripe, against one
    # gateway a rack and against two gateways that both fetch everything. Three stripes: the
    # stripes need not divide the 64 pieces of a bitfield word.
    def run(**kw: object) -> tuple[float, float]:
        sc = scenario(racks=4, hosts_per_rack=10, size=64 * MiB, ingress=mbit(200), nic=mbit(400),
                      uplink=mbit(1000), **kw)
        r = simulate(sc, random.Random(1))
        return r.seconds / r.t_min, r.cross_rack_bytes / (sc.racks * sc.size)

    one, (_, two_cross) = run()[0], run(policy=Policy(seedbox_per_rack=2))
    assert two_cross > 1.5  # both gateways pull every piece into the rack
    for stripes in (2, 3):
        striped, striped_cross = run(stripes=stripes)
        assert 1.0 <= striped_cross <= 1.15, stripes  # between them, once
        assert striped < 0.9 * one, stripes


def test_more_stripes_than_hosts_go_round_the_rack() -> None:
    sc = scenario(racks=2, hosts_per_rack=2, stripes=5)  # each host brings in two or three stripes
    result = simulate(sc, random.Random(1))
    assert result.cross_rack_bytes / (sc.racks * sc.size) <= 1.15
    assert len(result.completion) == sc.hosts


def test_stripe_masks_cover_every_piece_once() -> None:
    masks = stripe_masks(130, 3)
    bits = [[bool(int(masks[k, q >> 6]) >> (q & 63) & 1) for q in range(130)] for k in range(3)]
    assert all(bits[q % 3][q] and sum(b[q] for b in bits) == 1 for q in range(130))


@pytest.mark.parametrize("cores,sessions,expected_gib", [
    (2, 1, 2 / 6),  # the CPU runs out first: 2 cores / (4 + 2) CPU-s per GiB
    (64, 1, 1 / 3),  # one network thread: 1 / (2 + 1)
    (64, 4, 4 / 3),
    (8, 4, 8 / 6),  # four threads would do 4/3 GiB/s, eight cores the same
])
def test_a_hosts_ceiling_is_where_its_cpu_or_its_busiest_thread_runs_out(cores: float, sessions: int,
                                                                        expected_gib: float) -> None:
    cost = HostCost.from_dataplane({"rows": [
        {"stage": "one client", "process": "client h0", "cpu_per_gib": 4.0, "busiest_per_gib": 2.0},
        {"stage": "one client", "process": "seedbox (upload)", "cpu_per_gib": 2.0, "busiest_per_gib": 1.0}]})
    assert cost.ceiling(cores, sessions) == pytest.approx(expected_gib * (1 << 30))
    with pytest.raises(ValueError, match="one client"):
        HostCost.from_dataplane({"rows": []})


def test_a_host_ceiling_below_the_nic_slows_the_swarm() -> None:
    free, capped = scenario(), scenario(host_ceiling=mbit(30))  # below the ingress (50), far below the NIC
    floor = capped.size / (mbit(30) * capped.efficiency)  # no host receives faster than its ceiling
    assert simulate(free, random.Random(1)).seconds < floor <= simulate(capped, random.Random(1)).seconds


def test_a_hosts_finish_time_is_added_to_its_completion_and_nothing_else() -> None:
    plain, late = (simulate(scenario(finish=f), random.Random(2)) for f in (0.0, 1.5))
    assert late.completion == pytest.approx([c + 1.5 for c in plain.completion])
    assert late.seconds == pytest.approx(plain.seconds + 1.5)
    assert late.cross_rack_bytes == plain.cross_rack_bytes


@pytest.mark.parametrize("kw,pieces", [
    (dict(), 1),  # the what-if off
    (dict(request_queue_time=3.0, nic=mbit(50)), 4),  # 3 s x 1.5 MB/s a slot: 4.5 MB
    (dict(request_queue_time=3.0, nic=mbit(200)), 7),  # 500 blocks of 16 KiB: 7.8 MiB
    (dict(request_queue_time=3.0, nic=mbit(25_000), piece=64 * MiB), 1),  # the projections' pieces
    (dict(request_queue_time=3.0, unchoke=0.0), 1),  # a slot freed after each piece: no pipeline
])
def test_a_connections_request_pipeline_spans_the_pieces_libtorrent_would_ask_for(kw: dict[str, object],
                                                                                   pieces: int) -> None:
    assert scenario(**kw).pipeline == pieces


@pytest.mark.parametrize("busy_rtt", [0.0, 0.02, 1000.0])
def test_with_a_request_pipeline_every_host_still_gets_every_piece_and_no_faster_than_the_limit(
        busy_rtt: float) -> None:
    for sc in (scenario(request_queue_time=3.0, busy_rtt=busy_rtt),
               scenario(racks=1, hosts_per_rack=8, nic=mbit(100), uplink=None, request_queue_time=3.0,
                        busy_rtt=busy_rtt),
               scenario(stock=True, request_queue_time=3.0, busy_rtt=busy_rtt)):
        r = simulate(sc, random.Random(3))
        assert len(r.completion) == sc.hosts
        assert r.seconds >= sc.bound()


def test_a_host_committed_to_its_gateways_pieces_ahead_slows_a_rack_behind_one_gateway() -> None:
    # The what-if's point (docs/simulator.md): rack-mates that have asked the gateway for pieces
    # seconds ahead and get them nowhere else relay less among themselves.
    rack = dict(racks=1, hosts_per_rack=8, nic=mbit(100), uplink=None)
    plain = statistics.fmean(simulate(scenario(**rack), random.Random(s)).seconds for s in range(3))
    piped = statistics.fmean(simulate(scenario(**rack, request_queue_time=3.0, busy_rtt=1000.0),
                                      random.Random(s)).seconds for s in range(3))
    assert piped > plain * 1.05


def _one_slot_two_askers(reciprocate: bool, seed: int) -> int:
    """Host 1 holds the only piece and has one upload slot; hosts 2 and 3 ask for it, and host 3
    sent host 1 a megabyte in the last choker round. Which host's connection got the slot."""
    import numpy as np

    from tools.sim import kernel

    kernel.seed(seed)
    n = 4
    none = 2 * n
    links = np.full(2 * n + 1, 1e6)  # NICs up and down, bytes/s: the piece takes a second
    links[none] = np.inf
    state = kernel.State.empty(n, 1, np.array([1e6]), links)
    state.reciprocate = reciprocate  # before the connections, as simulate() sets it
    pairs = [(1, 2), (1, 3), (2, 1), (3, 1)]
    state.add_edges(np.array([(u, d, u, n + d, none, none) for u, d in pairs], dtype=np.int64))
    state.add_piece(1, 0, host=True)
    state.this_round[pairs.index((3, 1))] = 1e6
    state.new_round()
    state.step(0.0, 0.001, 1, none, unchoke=15.0)
    moving = [pairs[e][1] for e in range(2) if state.piece[e] >= 0]
    assert len(moving) == 1  # one slot
    return moving[0]


def test_the_reciprocal_choker_gives_a_freed_slot_to_the_peer_that_sent_the_most() -> None:
    assert {_one_slot_two_askers(True, seed) for seed in range(20)} == {3}
    assert {_one_slot_two_askers(False, seed) for seed in range(20)} == {2, 3}  # random: either
