"""``python -m tools.lab up``: build the emulated datacenter and keep it up until Ctrl-C.

    python -m tools.lab up [--racks 2] [--hosts-per-rack 3] [--nic 200] [--uplink 100] [--ingress 50]
"""

from __future__ import annotations

import argparse
import contextlib

from tools.lab.lab import Lab
from tools.lab.netns import NetnsUnavailable
from tools.lab.topology import Topology, add_impairments, check_impairments


def main() -> None:
    import signal

    parser = argparse.ArgumentParser(description="Build the emulated datacenter and keep it up until Ctrl-C.")
    parser.add_argument("command", choices=["up"])
    parser.add_argument("--racks", type=int, default=2)
    parser.add_argument("--hosts-per-rack", type=int, default=3)
    parser.add_argument("--nic", type=float, default=200.0, help="host NIC, Mbit/s each way")
    parser.add_argument("--uplink", type=float, default=100.0, help="rack uplink, Mbit/s each way (0: unshaped)")
    parser.add_argument("--ingress", type=float, default=50.0, help="external storage -> seedbox, Mbit/s")
    add_impairments(parser)
    args = parser.parse_args()
    check_impairments(parser, args)
    try:
        lab = Lab(Topology(args.racks, args.hosts_per_rack, args.nic, args.uplink or None, args.ingress,
                           args.latency, args.loss / 100))
    except NetnsUnavailable as exc:
        raise SystemExit(f"cannot build the lab: {exc}") from exc
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # a KeyboardInterrupt: the lab comes down
    with lab:
        for host in lab.fabric.hosts.values():
            print(f"{host.name:<10} {host.ip:<14} ip netns exec {host.ns} bash")
        print("up; Ctrl-C tears it down")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
