"""Projections for the mission's fleets: the striped design at 1,000 and 10,000 hosts, with and
without the host's measured CPU cost.

    python -m tools.sim.project [--hosts 1000,10000] [--stripes 4] [--dataplane docs/dataplane-figures.json]
        [--cores 32] [--sessions 1] [--dt SECONDS]

Each fleet in racks of 40 hosts, a 500 GB model in 64 MiB pieces, 10 Gbit/s from external storage,
25 Gbit/s host NICs, 100 Gbit/s rack uplinks (``--size``, ``--ingress``, ``--nic``, ``--uplink``,
``--hosts-per-rack`` to change them). For each fleet the simulator (``simulate.py``) runs the
striped design twice: hosts limited by their NICs alone, and by the ceiling their CPU sets
(``ceiling.py``: the data-plane benchmark's CPU per GiB received and sent, on ``--cores`` cores
with ``--sessions`` libtorrent sessions, one network thread each). The data-plane figures are this
project's 2-core machine's (``docs/dataplane-figures.json``, from ``python -m tools.bench.dataplane``).
Prints T, T_min, T/T_min, bytes into racks over the minimum, the copies of the model the seedbox
sent, the seconds the run took, and what the projection assumes.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import time
from pathlib import Path

from common.units import parse_size
from tools.sim.ceiling import HostCost
from tools.sim.physics import mbit
from tools.sim.simulate import Scenario, _Live, simulate

ASSUMES = [
    "the simulator's model (tools/sim/simulate.py docstring): fluid max-min fair flows over NICs and uplinks, "
    "store-and-forward pieces, rarest first, the tracker's own peer selection; no latency, loss, TCP ramp-up or disk",
    "the seedbox reads in index order at the ingress rate from the start; hosts announce within the first seconds",
    "with a ceiling: a host receives and sends at the same rate, its CPU shared by both, measured on this "
    "project's 2-core benchmark machine (shared, noisy): a datacenter host's cores are likely faster",
    "the seedbox is limited by its NIC and the ingress only (its own CPU is not modelled)",
]


def _say(hosts: int, row: tuple[float, ...]) -> None:
    if int(row[0]) % 60 == 0:
        print(f"  {hosts} hosts: {row[0]:.0f} s simulated, seedbox {row[1]:.0f} pieces, mean host {row[2]:.0f}",
              file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", default="1000,10000", help="fleet sizes, comma-separated (default: 1000,10000)")
    parser.add_argument("--hosts-per-rack", type=int, default=40)
    parser.add_argument("--stripes", type=int, default=4, help="stripes of the model (default: 4)")
    parser.add_argument("--size", default="500GB")
    parser.add_argument("--piece", default="64MiB")
    parser.add_argument("--ingress", type=float, default=10_000, help="Mbit/s (default: 10000)")
    parser.add_argument("--nic", type=float, default=25_000, help="Mbit/s each way (default: 25000)")
    parser.add_argument("--uplink", type=float, default=100_000, help="rack uplink, Mbit/s each way (default: 100000)")
    parser.add_argument("--dataplane", type=Path, default=Path("docs/dataplane-figures.json"),
                        help="the data-plane benchmark's figures "
                        "(default: docs/dataplane-figures.json, measured 2026-12-03)")
    parser.add_argument("--cores", type=float, default=32, help="cores of a host (default: 32)")
    parser.add_argument("--sessions", type=int, default=1,
                        help="libtorrent sessions per host, each with its own network thread (default: 1, as built)")
    parser.add_argument("--limits", default="nic,cpu",
                        help="which runs per fleet: nic (hosts limited by their NICs), cpu (by their CPU's ceiling)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dt", type=float, default=0,
                        help="time step, s (default 0: a tenth of a piece's time on a NIC, 2.2 ms here; a 10,000-host "
                        "run takes about 20 min of one core at it; a longer step runs faster but moves the figures: "
                        "docs/simulator.md)")
    args = parser.parse_args()
    try:
        fleets = [int(h) for h in args.hosts.split(",") if h]
    except ValueError:
        parser.error("--hosts takes whole numbers, comma-separated")
    if args.dt < 0:
        parser.error("--dt must be positive (0: the default step)")
    kinds = [k for k in args.limits.split(",") if k]
    if not kinds or set(kinds) - {"nic", "cpu"}:
        parser.error("--limits takes nic, cpu or both, comma-separated")
    if any(h < args.hosts_per_rack or h % args.hosts_per_rack for h in fleets):
        parser.error(f"each fleet must be whole racks of {args.hosts_per_rack} hosts")
    if not args.dataplane.is_file():
        parser.error(f"{args.dataplane} does not exist: run `python -m tools.bench.dataplane` first")
    try:
        cost = HostCost.from_dataplane(json.loads(args.dataplane.read_text()))
        ceiling = cost.ceiling(args.cores, args.sessions)
    except ValueError as exc:
        parser.error(str(exc))
    size, piece = parse_size(args.size), parse_size(args.piece)
    print(f"host ceiling: {cost.describe(args.cores, args.sessions)} (from {args.dataplane})", flush=True)
    print("| hosts | racks | stripes | host limit | step ms | T s | T_min s | T/T_min | cross-rack/min "
          "| seedbox copies | run s |\n|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for hosts in fleets:
        for limit in [None if kind == "nic" else ceiling for kind in kinds]:
            sc = Scenario(hosts // args.hosts_per_rack, args.hosts_per_rack, size, piece, mbit(args.ingress),
                          mbit(args.nic), mbit(args.uplink) if args.uplink else None, stripes=args.stripes,
                          host_ceiling=limit, dt=args.dt or None)
            began = time.monotonic()
            # A line on stderr every simulated minute: a 10,000-host run takes some 20 minutes.
            # raises if the swarm stalls
            result = simulate(sc, random.Random(args.seed), _Live(functools.partial(_say, hosts)))
            s = result.summary(sc)
            label = "NIC" if limit is None else f"CPU {limit * 8 / 1e9:.1f} Gbit/s"
            step = sc.step * 1000
            print(f"| {hosts} | {sc.racks} | {args.stripes} | {label} | {step:.1f} | {s['seconds']} | {s['t_min']} | "
                  f"{s['t_over_t_min']} | {s['cross_rack_over_min']} | {s['seedbox_sent_over_size']} | "
                  f"{time.monotonic() - began:.0f} |", flush=True)
    print("\nAssumes:\n" + "\n".join(f"- {a}" for a in ASSUMES))


if __name__ == "__main__":
    main()
