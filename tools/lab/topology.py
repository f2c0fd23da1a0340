"""The shape of an emulated datacenter: racks, hosts, link rates, latency and loss, and the
network of namespaces built from it (``tools/lab/netns.py``).

The external storage (an HTTP origin) sits behind the ingress link (``ingress_mbit``, its NIC); the
tracker and the seedbox on the core switch; each rack a bridge behind an uplink (``uplink_mbit``
each way, None: unshaped) with ``hosts_per_rack`` hosts whose NICs are shaped to ``nic_mbit`` each
way.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from tools.lab.netns import Fabric, Host
from tools.sim.physics import mbit, t_min


@dataclass(frozen=True)
class Topology:
    racks: int = 2
    hosts_per_rack: int = 3
    nic_mbit: float = 200.0
    uplink_mbit: float | None = None
    ingress_mbit: float = 50.0
    latency_ms: float = 0.0  # one way, on every link into a host (tools/lab/netns.py)
    loss: float = 0.0  # share of the packets dropped on every link into a host

    @property
    def hosts(self) -> int:
        return self.racks * self.hosts_per_rack

    def ingress_seconds(self, size: int) -> float:
        """The time ``size`` bytes take on the ingress link at its full rate, s."""
        return size * 8 / (self.ingress_mbit * 1e6)

    def bound(self, size: int) -> float:
        """T_min for a model of ``size`` bytes on this topology (DESIGN.md)."""
        n = self.hosts
        return t_min(size, mbit(self.ingress_mbit), [mbit(self.nic_mbit)] * n, [mbit(self.nic_mbit)] * n,
                     mbit(self.uplink_mbit) if self.uplink_mbit else None)


@dataclass
class Datacenter:
    """The hosts of a topology, built in a fabric: external storage, tracker, seedbox, the clients
    rack by rack."""

    fabric: Fabric
    storage: Host
    tracker: Host
    seedbox: Host
    clients: list[Host] = field(default_factory=list)
    rack_of: dict[str, str] = field(default_factory=dict)  # client host -> its rack
    bridges: dict[str, str] = field(default_factory=dict)  # rack -> its bridge, for hosts added later

    @classmethod
    def build(cls, t: Topology) -> Datacenter:
        """Raises NetnsUnavailable where namespaces cannot be made; nothing is left behind then."""
        fabric = Fabric(latency_ms=t.latency_ms, loss=t.loss)
        try:
            dc = cls(fabric, fabric.host("storage", rate=f"{t.ingress_mbit}mbit"), fabric.host("tracker"),
                     fabric.host("seedbox", rate=f"{t.nic_mbit}mbit"))
            for r in range(t.racks):
                rack = f"rack{r + 1}"
                bridge = dc.bridges[rack] = fabric.rack(rack, uplink=f"{t.uplink_mbit}mbit"
                                                        if t.uplink_mbit else None)
                for h in range(t.hosts_per_rack):
                    host = fabric.host(f"r{r + 1}h{h + 1}", rate=f"{t.nic_mbit}mbit", bridge=bridge)
                    dc.clients.append(host)
                    dc.rack_of[host.name] = rack
        except BaseException:
            fabric.close()
            raise
        return dc


def add_impairments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latency", type=float, default=0.0,
                        help="ms added one way on every link into a host (a round trip: twice); needs iptables")
    parser.add_argument("--loss", type=float, default=0.0,
                        help="percent of the packets dropped on every link into a host; needs iptables, ethtool")


def check_impairments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.latency < 0:
        parser.error("--latency must not be negative")
    if not 0 <= args.loss < 100:
        parser.error("--loss must be a percentage in [0, 100)")
