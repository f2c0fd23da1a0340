"""Distribution time for fleets too large for the testbed: a time-stepped fluid simulator.

    python -m tools.sim.simulate --racks 25 --hosts-per-rack 40 --size 500GB --ingress 10000 --nic 25000 --uplink 100000

It uses the tracker's own peer selection (``tracker.peers.SwarmIndex`` with the same ``Policy``) for
who is told about whom, and models the rest:

- **Source.** From ``start`` on, the seedbox receives pieces from external storage in index order
  at the ingress rate (streaming) and offers each as soon as it has it; ``stock`` (plain BitTorrent): only once it has
  the whole model, and the tracker hands out peers at random (``Policy(gateways=False)``, flat).
- **Announces.** The seedbox first announces at ``start``, every host at ``hosts_start`` (plus up
  to ``start_spread``), then every ``interval``; it connects to every peer it is told about, up to
  ``max_peers`` connections each side. Connections are kept.
- **Pieces.** A host asks each connected peer for a piece that peer has and it lacks: one it has
  begun first, then the rarest (fewest holders fleet-wide, ties at random). Blocks of one piece may
  come from several peers at once (libtorrent requests 16 KiB blocks): the piece is done when their
  bytes add up to it. A piece is forwarded only once whole and verified (store and forward). Each
  host uploads to at most ``slots`` peers at once (libtorrent's ``unchoke_slots_limit``); a freed
  slot goes to one of the waiting peers at random, as libtorrent's choker rotates its unchokes.
- **Bandwidth.** Every transfer is a fluid flow; rates are shared max-min fairly (approximately:
  a few rounds of progressive filling) over each host's NIC up and down, the seedbox's NIC and each
  rack uplink each way. ``efficiency`` is the payload share of a link's rate (TCP/IP and BitTorrent
  framing). Latency, loss, TCP's ramp-up and disk are not modelled; a host's CPU only as a ceiling
  on what it moves each way (``host_ceiling``, from the data-plane benchmark: ``ceiling.py``).

The piece size of the simulation (``--piece``) is the torrent's (64 MiB) unless told otherwise. A
coarser piece runs faster but is not a neutral shortcut: a piece then holds a slot for longer and
fewer pieces are in flight: at 1,000 hosts and 500 GB, 2 GB pieces gave T/T_min 3.0 and 4.5x the
minimum cross-rack bytes where 64 MiB pieces point to about 2.1 and 1.5x (README). A longer step
(``--dt``) is not neutral either: at 1,000 hosts and 10 GB, 5x the default step gave T/T_min 5.02
instead of 4.80 and 10x gave 5.29, for only 2.6x and 3.2x less run time.
Pure: no I/O, the RNG passed in. ``tools/bench/distribute.py`` runs it beside the testbed.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from common.settings import UPLOAD_SLOTS
from common.units import parse_size
from tools.sim import kernel as sim_kernel
from tools.sim.physics import mbit, t_min
from tracker.peers import Asker, Candidate, Location, Policy, Stripe, SwarmIndex

SEEDBOX = 0  # node 0; hosts are 1..N
BLOCK = 16 * 1024  # BitTorrent's request size
MAX_OUT_REQUESTS = 500  # libtorrent 2.1's max_out_request_queue default (blocks out to one peer)


@dataclass(frozen=True)
class Scenario:
    racks: int
    hosts_per_rack: int
    size: float  # bytes
    piece: float  # bytes, the simulation's piece
    ingress: float  # bytes/s, external storage -> seedbox
    nic: float  # bytes/s each way, every host
    uplink: float | None  # bytes/s each way per rack; None: not narrower than its hosts
    seedbox_nic: float | None = None  # bytes/s each way; None: as a host's
    stock: bool = False
    policy: Policy = field(default_factory=Policy)
    numwant: int = 50
    interval: float = 60.0
    start: float = 2.0  # the seedbox's first announce and source read, s (process start, manifest, session)
    hosts_start: float | None = None  # the hosts' first announces begin; None: at ``start``
    start_spread: float = 1.0
    max_peers: int = 200
    slots: int = UPLOAD_SLOTS  # the hosts' and the seedbox's upload_slots
    # s a peer keeps an upload slot it was given (while it wants something of the uploader):
    # libtorrent's unchoke_interval, 15 s by default; 0: a slot is free again after each piece.
    unchoke: float = 15.0
    # What-if, off by default (docs/simulator.md, "libtorrent's request pipeline"): libtorrent keeps
    # ``request_queue_time`` (3 s) of requests out to each peer it downloads from, at most
    # ``max_out_request_queue`` (500) blocks of 16 KiB, and a piece whose blocks are all asked of
    # one peer is asked of no other. With the lab's 1 MiB pieces that commits a host to 4-8 of a
    # peer's pieces ahead; with 64 MiB pieces never more than the piece moving. 0: off.
    request_queue_time: float = 0.0
    # With nothing else to ask a peer for, libtorrent asks it for one block at a time of a piece
    # already asked of another (end game): a block a round trip of ``busy_rtt`` s (0: as fast as
    # the links allow, the model's usual blocks-from-several-peers).
    busy_rtt: float = 0.0
    # What-if, off by default: "random", a freed upload slot goes to a waiting peer at random;
    # "reciprocal", to the waiting peer that sent the uploader the most in the last choker round
    # (``unchoke`` s), ties at random, as libtorrent's choker ranks peers (src/choker.cpp
    # compare_peers: downloaded_in_last_round first).
    choker: str = "random"
    # "rarest": rarest first by the pieces hosts hold, as libtorrent (which cannot see what its
    # peers are fetching); "spread": a piece in flight counts as held, an idealised picker whose
    # peers fetch different pieces (a what-if, to measure what duplicate fetches cost).
    picker: str = "rarest"
    # The striped design (common/torrent.py): piece q is stripe q % stripes's, each stripe a swarm
    # whose gateway in a rack is the rack's (stripe % hosts)-th host (tracker/peers.py).
    # Modelled as one set of connections (every stripe's peer lists, merged) in which a host fetches
    # from outside its rack only the pieces of the stripes it is a gateway of.
    stripes: int = 1
    # Bytes/s a host can move each way, whatever its NIC (its CPU and busiest thread: ceiling.py);
    # None: the NIC alone. Not applied to the seedbox.
    host_ceiling: float | None = None
    # s from a host's last piece to its model activated (the last checks and flushes, the swap):
    # host-side work the model has no part for, taken from a lab run (``Result.phases``); 0 in
    # projections, where it is a second against minutes.
    finish: float = 0.0
    efficiency: float = 0.96
    dt: float | None = None  # step, s; None: a tenth of a piece's time on a NIC, at most 0.5 s

    @property
    def hosts(self) -> int:
        return self.racks * self.hosts_per_rack

    @property
    def pieces(self) -> int:
        return max(1, math.ceil(self.size / self.piece))

    @property
    def seedbox_slots(self) -> int:
        """The seedbox's upload slots: ``slots`` for each stripe's torrent, all in its one session
        (``seedbox/seeder.py seedbox_slots``)."""
        return self.slots * (1 if self.stock else self.stripes)

    @property
    def pipeline(self) -> int:
        """Pieces a connection has asked for at once (the one moving included): libtorrent's
        request queue at an upload slot's share of a NIC, in whole pieces, at least 1."""
        if self.request_queue_time <= 0 or self.unchoke <= 0:
            return 1
        per_slot = min(self.nic, self.host_ceiling or math.inf) * self.efficiency / self.slots
        queued = min(MAX_OUT_REQUESTS * BLOCK, self.request_queue_time * per_slot)
        return max(1, int(queued // self.piece))

    @property
    def step(self) -> float:
        """The time step, s."""
        return self.dt or min(0.5, self.piece / (self.nic * self.efficiency) / 10)

    def bound(self) -> float:
        n, seed_nic = self.hosts, self.seedbox_nic or self.nic
        return t_min(self.size, min(self.ingress, seed_nic), [self.nic] * n, [self.nic] * n, self.uplink)


@dataclass
class SimResult:
    seconds: float  # start to the last host done
    t_min: float
    completion: list[float]  # per host
    cross_rack_bytes: float  # into racks over their uplinks
    seedbox_sent: float
    steps: int
    # Over the middle half of the ingest (streaming; none for plain BitTorrent): each node's
    # upload and goodput (pieces completed), bytes/s, and which hosts were their rack's gateway.
    window_up: list[float] = field(default_factory=list)
    window_goodput: list[float] = field(default_factory=list)
    gateways: list[int] = field(default_factory=list)

    def while_streaming(self, scenario: Scenario) -> dict[str, float]:
        """Where the bytes went while the model streamed in: mean goodput per host against the
        ingress, and the share of the uplink in use at the seedbox, the gateways and the other
        hosts. Empty when there was no such window."""
        if not self.window_up:
            return {}
        up, good = np.array(self.window_up), np.array(self.window_goodput)
        gw = np.zeros(len(up), dtype=bool)
        gw[self.gateways] = True
        others = ~gw
        others[SEEDBOX] = False
        nic = scenario.nic * scenario.efficiency
        return {"goodput_over_ingress": round(float(good[1:].mean()) / (scenario.ingress * scenario.efficiency), 3),
                "seedbox_uplink_use": round(float(up[SEEDBOX]) / ((scenario.seedbox_nic or scenario.nic)
                                                                 * scenario.efficiency), 3),
                "gateway_uplink_use": round(float(up[gw].mean()) / nic, 3) if gw.any() else 0.0,
                "gateway_goodput_over_ingress": round(float(good[gw].mean()) / (scenario.ingress * scenario.efficiency),
                                                      3) if gw.any() else 0.0,
                "other_uplink_use": round(float(up[others].mean()) / nic, 3) if others.any() else 0.0}

    def summary(self, scenario: Scenario) -> dict[str, float]:
        done = sorted(self.completion)
        return {"hosts": scenario.hosts, "seconds": round(self.seconds, 2), "t_min": round(self.t_min, 2),
                "t_over_t_min": round(self.seconds / self.t_min, 3),
                "cross_rack_over_min": round(self.cross_rack_bytes / (scenario.racks * scenario.size), 3),
                "seedbox_sent_over_size": round(self.seedbox_sent / scenario.size, 2),
                "p50": round(statistics.median(done), 2),
                "p99": round(done[min(len(done) - 1, int(len(done) * .99))], 2), "max": round(done[-1], 2)}


class _Swarm:
    """Who is told about whom: the tracker's index over each stripe's swarm as it stands, rebuilt
    at most once a simulated second (the tracker's views refresh about as often)."""

    def __init__(self, sc: Scenario, rack_of: np.ndarray, rng: random.Random) -> None:
        self.sc = sc
        self.rng = rng
        self.policy = Policy(remote_share=0.0, seedbox_per_rack=1 << 30, gateways=False) if sc.stock else sc.policy
        self.stripes = 1 if sc.stock else sc.stripes
        flat = Location()
        self.loc = [Location("dc1", "pod1", "seedbox")] + [
            flat if sc.stock else Location("dc1", "pod1", f"rack{rack_of[i] + 1}") for i in range(1, sc.hosts + 1)]
        self.first_seen: dict[int, float] = {}
        self.rack_hosts: dict[Location, list[int]] = {}  # every host registered, in node order
        for node in range(1, sc.hosts + 1):
            self.rack_hosts.setdefault(self.loc[node], []).append(node)
        self.indexes: list[SwarmIndex[int]] = []
        self.built_at = -1e9

    @property
    def index(self) -> SwarmIndex[int] | None:
        return self.indexes[0] if self.indexes else None

    def gateways(self) -> dict[int, list[int]]:
        """Each gateway and the stripes it brings into its rack."""
        out: dict[int, list[int]] = {}
        for k, index in enumerate(self.indexes):
            for node in index.gateways:
                out.setdefault(node, []).append(k)
        return out

    def peers(self, nodes: list[int], now: float, have_any: np.ndarray, have_all: np.ndarray) -> list[list[int]]:
        """The peer lists of ``nodes``, all announcing at ``now``: the index is rebuilt once for
        them (once per new host made 10,000 hosts' first second quadratic)."""
        for node in nodes:
            self.first_seen.setdefault(node, now)
        if not self.indexes or now - self.built_at >= 1.0 or any(n not in self.indexes[0].by_key for n in nodes):
            candidates = [
                Candidate(n, self.loc[n], bool(have_any[n]), bool(have_all[n]) and n != SEEDBOX, n == SEEDBOX, t, n)
                for n, t in self.first_seen.items()]
            self.indexes = [SwarmIndex(candidates, self.policy) if self.stripes == 1 else SwarmIndex(
                candidates, self.policy, Stripe(k, self.rack_hosts, now, self.sc.interval))
                for k in range(self.stripes)]
            self.built_at = now
        lists = []
        for node in nodes:
            asker = Asker(self.loc[node], self.first_seen[node], bool(have_all[node]) and node != SEEDBOX,
                          node == SEEDBOX, node)
            picked = [index.select(asker, self.sc.numwant, self.rng, exclude=node) for index in self.indexes]
            lists.append(picked[0] if len(picked) == 1 else list(dict.fromkeys(p for ps in picked for p in ps)))
        return lists


def simulate(sc: Scenario, rng: random.Random | None = None, trace: list[tuple[float, ...]] | None = None
             ) -> SimResult:
    """Run ``sc`` to the last host done. ``trace`` (if given) receives, about once a simulated
    second: (time, pieces at the seedbox, mean pieces per host, bytes/s moving, transfers moving)."""
    rng = rng or random.Random(1)
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    sim_kernel.seed(int(nrng.integers(1 << 31)))
    n, p, racks = sc.hosts + 1, sc.pieces, sc.racks
    piece_bytes = np.full(p, sc.piece)
    piece_bytes[-1] = sc.size - sc.piece * (p - 1)
    rack_of = np.array([-1] + [h // sc.hosts_per_rack for h in range(sc.hosts)])
    eff = sc.efficiency
    seed_nic = (sc.seedbox_nic or sc.nic) * eff
    # Constraints: up[0..n), down[n..2n), rack out [2n..2n+R), rack in [2n+R..2n+2R), none (inf).
    host = min(sc.nic, sc.host_ceiling or math.inf) * eff
    cap0 = np.concatenate([[seed_nic], np.full(n - 1, host), [seed_nic], np.full(n - 1, host),
                           np.full(2 * racks, (sc.uplink or math.inf) * eff), [math.inf]])
    none = len(cap0) - 1
    dt = sc.step
    state = sim_kernel.State.empty(n, p, piece_bytes, cap0)
    state.pipeline(sc.pipeline, BLOCK / sc.busy_rtt if sc.busy_rtt > 0 else math.inf)
    state.reciprocate = sc.choker == "reciprocal"
    next_round = sc.unchoke
    node_slots = np.full(n, sc.slots, dtype=np.int64)
    node_slots[SEEDBOX] = sc.seedbox_slots
    degree = np.zeros(n, dtype=np.int64)
    connected: set[tuple[int, int]] = set()

    swarm = _Swarm(sc, rack_of, rng)
    first = sc.start if sc.hosts_start is None else sc.hosts_start
    state.announce_at[:] = np.concatenate([[sc.start], first + nrng.uniform(0, sc.start_spread, n - 1)])
    cross = sent_by_seedbox = 0.0
    now, steps = 0.0, 0
    ingest = sc.size / (sc.ingress * eff)
    window = (sc.start + ingest / 4, sc.start + ingest * 3 / 4)
    marks: list[tuple[float, np.ndarray, np.ndarray]] = []  # (time, sent, pieces held) at the window's ends
    gateways: list[int] = []  # at the window's end
    shared_at = -1.0  # when the gateways' stripes were last given out (Scenario.stripes)
    bound = sc.bound()
    stalled = 100 * bound + 3600  # no swarm takes this long: the simulation has a bug

    new_edges: list[tuple[int, int, int, int, int, int]] = []

    def connect(a: int, b: int) -> None:
        if (min(a, b), max(a, b)) in connected or degree[a] >= sc.max_peers or degree[b] >= sc.max_peers:
            return
        connected.add((min(a, b), max(a, b)))
        degree[a] += 1
        degree[b] += 1
        pairs = [(a, b), (b, a)] if SEEDBOX not in (a, b) else [(SEEDBOX, b if a == SEEDBOX else a)]
        for u, d in pairs:
            ru, rd = rack_of[u], rack_of[d]
            crossing = ru != rd
            new_edges.append((u, d, u, n + d, 2 * n + ru if crossing and ru >= 0 else none,
                              2 * n + racks + rd if crossing else none))

    while np.isnan(state.finished[1:]).any():
        # The seedbox's pieces from external storage.
        reading = max(0.0, now - sc.start)  # the seedbox starts as the hosts do
        if sc.stock:
            arrived = p if reading >= sc.size / (sc.ingress * eff) else 0
        else:
            arrived = min(p, int(reading * sc.ingress * eff // sc.piece))
        for q in range(int(state.counts[SEEDBOX]), arrived):
            state.add_piece(SEEDBOX, q, host=False)
        # Announces: connect to whoever the tracker names.
        due = np.nonzero(state.announce_at <= now)[0]
        if len(due):
            have_any, have_all = state.counts > 0, state.counts == p
            for node, others in zip(due.tolist(), swarm.peers(due.tolist(), now, have_any, have_all), strict=True):
                for other in others:
                    connect(node, other)
                state.announce_at[node] = now + sc.interval
            if new_edges:
                state.add_edges(np.array(new_edges, dtype=np.int64))
                new_edges.clear()
            if swarm.stripes > 1 and swarm.built_at != shared_at:
                _share(state.share, swarm.gateways(), p, swarm.stripes)
                state.shared()
                shared_at = swarm.built_at  # the gateways change only when the indexes do
        if state.reciprocate and sc.unchoke > 0 and now >= next_round:
            state.new_round()
            next_round += sc.unchoke
        crossed, from_seedbox, moving, transfers = state.step(now, dt, node_slots, none, sc.picker == "spread",
                                                              sc.unchoke)
        cross += crossed
        sent_by_seedbox += from_seedbox
        if trace is not None and transfers and int((now + dt) / max(1.0, dt)) != int(now / max(1.0, dt)):
            trace.append((now, float(state.counts[SEEDBOX]), float(state.counts[1:].mean()), moving,
                          float(transfers)))
        now += dt
        steps += 1
        if not sc.stock and len(marks) < 2 and now >= window[len(marks)]:
            marks.append((now, state.sent.copy(), state.counts.copy()))
            gateways = [int(k) for k in swarm.gateways()]  # the role moves on as hosts finish
        if now > stalled:
            raise RuntimeError("the simulated swarm stalled (no progress for far longer than the bound)")
    finished = state.finished + sc.finish
    result = SimResult(float(np.nanmax(finished[1:])), bound, [float(x) for x in finished[1:]], float(cross),
                       float(sent_by_seedbox), steps)
    if len(marks) == 2:
        (t0, sent0, held0), (t1, sent1, held1) = marks
        result.window_up = ((sent1 - sent0) / (t1 - t0)).tolist()
        result.window_goodput = ((held1 - held0) * sc.piece / (t1 - t0)).tolist()
        result.gateways = gateways
    return result


def add_what_if_options(parser: argparse.ArgumentParser) -> None:
    """The what-ifs' options: libtorrent's request pipeline (``Scenario.request_queue_time``,
    ``busy_rtt``) and its choker (``Scenario.choker``)."""
    parser.add_argument("--request-queue-time", type=float, default=0.0, metavar="S",
                        help="what-if: libtorrent's request pipeline, s of requests out to a peer (libtorrent: 3; "
                        "default 0: off)")
    parser.add_argument("--busy-rtt", type=float, default=0.0, metavar="S",
                        help="what-if, with --request-queue-time: one block of a piece asked of another peer per "
                        "this round trip (default 0: at the links' rate)")
    parser.add_argument("--choker", choices=["random", "reciprocal"], default="random",
                        help="what-if: a freed upload slot goes to a waiting peer at random, or to the one that "
                        "sent the uploader the most in the last choker round, as libtorrent ranks (default: random)")


@dataclass(frozen=True)
class WhatIf:
    """The what-ifs' settings (``Scenario.request_queue_time``, ``busy_rtt``, ``choker``); all off by default."""

    request_queue_time: float = 0.0
    busy_rtt: float = 0.0
    choker: str = "random"

    def __bool__(self) -> bool:
        return bool(self.request_queue_time or self.busy_rtt or self.choker != "random")

    def apply(self, sc: Scenario) -> Scenario:
        return dataclasses.replace(sc, request_queue_time=self.request_queue_time, busy_rtt=self.busy_rtt,
                                   choker=self.choker)


def what_if_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> WhatIf:
    """The what-if from parsed options (a negative one: a usage error)."""
    if args.request_queue_time < 0 or args.busy_rtt < 0:
        parser.error("--request-queue-time and --busy-rtt must not be negative")
    return WhatIf(args.request_queue_time, args.busy_rtt, args.choker)


def stripe_masks(pieces: int, stripes: int) -> np.ndarray:
    """(stripes, words) uint64: the bitfield of each stripe's pieces (piece q in stripe q % stripes)."""
    masks = np.zeros((stripes, (pieces + 63) // 64), dtype=np.uint64)
    for q in range(pieces):
        masks[q % stripes, q >> 6] |= np.uint64(1) << np.uint64(q & 63)
    return masks


def _share(share: np.ndarray, gateways: dict[int, list[int]], pieces: int, stripes: int) -> None:
    """A gateway may fetch from outside its rack only the pieces of the stripes it brings in; a
    host that is no gateway has no peer outside its rack to fetch from (but for a lone host: any)."""
    masks = stripe_masks(pieces, stripes)
    share[:-1] = np.uint64(0xFFFFFFFFFFFFFFFF)
    for node, ks in gateways.items():
        share[node] = np.bitwise_or.reduce(masks[ks], axis=0)


class _Live(list[tuple[float, ...]]):
    """A trace that shows each row as it comes instead of keeping it."""

    def __init__(self, show: Callable[[tuple[float, ...]], object]) -> None:
        super().__init__()
        self.show = show

    def append(self, row: tuple[float, ...]) -> None:
        self.show(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--racks", type=int, default=25)
    parser.add_argument("--hosts-per-rack", type=int, default=40)
    parser.add_argument("--size", default="500GB")
    parser.add_argument("--piece", default="64MiB", help="simulation piece (coarser runs faster, and slower swarms)")
    parser.add_argument("--ingress", type=float, default=10_000, help="Mbit/s")
    parser.add_argument("--nic", type=float, default=25_000, help="Mbit/s each way")
    parser.add_argument("--uplink", type=float, default=100_000, help="rack uplink, Mbit/s each way (0: unlimited)")
    parser.add_argument("--seedbox-nic", type=float, default=0, help="Mbit/s (0: as a host's)")
    parser.add_argument("--interval", type=float, default=60.0)
    parser.add_argument("--start", type=float, default=2.0, help="seconds to a host's first announce")
    parser.add_argument("--gateways", type=int, default=Policy().seedbox_per_rack,
                        help="gateways per rack (the tracker's seedbox_per_rack)")
    parser.add_argument("--slots", type=int, default=Scenario.slots, help="upload slots per host")
    parser.add_argument("--stock", action="store_true", help="plain BitTorrent instead")
    parser.add_argument("--stripes", type=int, default=1,
                        help="the model in this many stripes, each entering a rack through its own host")
    parser.add_argument("--picker", choices=["rarest", "spread"], default="rarest",
                        help="spread: a what-if picker that counts pieces in flight as held (Scenario.picker)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--dt", type=float, default=0,
                        help="time step, s (0: a tenth of a piece's time on a NIC, at most 0.5 s)")
    add_what_if_options(parser)
    args = parser.parse_args()
    size = parse_size(args.size)
    piece = parse_size(args.piece)
    sc = Scenario(args.racks, args.hosts_per_rack, size, piece, mbit(args.ingress), mbit(args.nic),
                  mbit(args.uplink) if args.uplink else None, mbit(args.seedbox_nic) if args.seedbox_nic else None,
                  stock=args.stock, policy=Policy(seedbox_per_rack=args.gateways), interval=args.interval,
                  start=args.start, slots=args.slots, dt=args.dt or None, picker=args.picker,
                  stripes=args.stripes)
    sc = what_if_options(parser, args).apply(sc)
    began = time.monotonic()
    with Progress(TextColumn("simulated {task.fields[now]:>7.1f} s"), BarColumn(),
                  TextColumn("mean host {task.percentage:>5.1f} %, seedbox {task.fields[seed]:.0f}/{task.total:.0f} "
                             "pieces"), TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                  disable=args.quiet) as bar:
        task = bar.add_task("", total=sc.pieces, now=0.0, seed=0)
        result = simulate(sc, random.Random(args.seed), _Live(lambda row: bar.update(
            task, completed=row[2], now=row[0], seed=row[1])))
    print(f"{sc.hosts} hosts ({sc.racks} racks x {sc.hosts_per_rack}), model {args.size} in {sc.pieces} simulated "
          f"pieces, ingress {args.ingress:g} Mbit/s, NIC {args.nic:g}, uplink {args.uplink or 'unlimited'}, "
          f"{'plain BitTorrent' if args.stock else 'modeltorrent'}")
    for key, value in result.summary(sc).items():
        print(f"  {key:<24}{value}")
    streaming = result.while_streaming(sc)
    if streaming:
        print("  while the model streamed in (the middle half of the ingest):")
        for key, value in streaming.items():
            print(f"    {key:<30}{value}")
    print(f"  ({result.steps} steps of {result.seconds / max(result.steps, 1) * 1000:.1f} ms in "
          f"{time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
