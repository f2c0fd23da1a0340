"""The tracker's peer index (``tracker/peers.py SwarmIndex``) at fleet sizes: how many times a
second it is built for a swarm and then answers 20 announces (a swarm changes about that often
while hosts join), for swarms of 100, 1,000 and 10,000 hosts in racks of 40 (3 racks for 100).

    python -m tools.bench.index [--seconds 2]

Pure Python, one core, no I/O: the cost the tracker pays per swarm change on top of its storage.
"""

from __future__ import annotations

import argparse
import random
import time

from tracker.peers import Asker, Candidate, Location, Policy, SwarmIndex

SHAPES = [(100, 3), (1000, 25), (10_000, 250)]  # (hosts, racks)
ANNOUNCES = 20  # answered by each index before the swarm changes


def rate(hosts: int, racks: int, seconds: float) -> float:
    """Index builds (each followed by ``ANNOUNCES`` answers) per second."""
    rng = random.Random(1)
    where = [Location("dc1", "pod1", f"rack{i % racks}") for i in range(hosts)]
    # a third with pieces, a tenth seeds, joined one after the other
    candidates = [Candidate(i, where[i], i % 3 == 0, i % 10 == 0, False, float(i), i) for i in range(hosts)]
    began, builds = time.perf_counter(), 0
    while time.perf_counter() - began < seconds:
        index = SwarmIndex(candidates, Policy())
        for _ in range(ANNOUNCES):
            i = rng.randrange(hosts)
            index.select(Asker(where[i], float(i), False, False, i), 50, rng, exclude=i)
        builds += 1
    return builds / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="per swarm size (default: 2)")
    args = parser.parse_args()
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    print(f"| hosts | racks | builds + {ANNOUNCES} announces per second |\n|---|---|---|")
    for hosts, racks in SHAPES:
        print(f"| {hosts:,} | {racks} | {rate(hosts, racks, args.seconds):.1f} |", flush=True)


if __name__ == "__main__":
    main()
