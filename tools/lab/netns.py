"""Hosts on one machine: Linux network namespaces on one bridge, each link shaped with ``tc``.

    with Fabric() as fabric:
        a = fabric.host("a", rate="100mbit")
        subprocess.run(a.argv("ping", "-c1", b.ip))

Each host is a namespace with one interface (``eth0``, an address in 10.213.0.0/16) whose veth
peer sits on a bridge in a namespace of its own (the core bridge, or a rack's bridge behind a
shaped uplink to the core), so nothing is added to the machine's own network:
every address lives inside namespaces made here, and ``close`` deletes them all. A link's rate
shapes both directions (``tbf`` on the host's egress for its upload and on the bridge port for its
download). Needs root and iproute2 (``ip``, ``tc``).

Latency and loss (``Fabric(latency_ms=..., loss=...)``) are added where each host receives, so
every packet between two hosts meets them once and a round trip twice. ``netem`` is not in every
kernel (not in this machine's), so they are made with iptables (Debian package ``iptables``): a
``statistic`` rule drops a random share of the packets, and an NFQUEUE rule hands the rest to
``tools/lab/linkdelay.py``, one listener per host, which holds each for the latency. With loss, the
hosts' TCP segmentation offload is turned off (``ethtool``), so that a drop loses one frame as on
a wire, not a 64 KiB burst.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

SUBNET = "10.213"
REPO = Path(__file__).resolve().parents[2]


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be made here (not root, no iproute2, or a kernel that refuses)."""


def check_available(latency: bool = False, loss: bool = False) -> None:
    """Raise NetnsUnavailable with the reason when this machine cannot make namespaces (or, if
    asked for, add latency or loss)."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")
    tools = {"ip": "iproute2", "tc": "iproute2"}
    if latency or loss:
        tools["iptables"] = "iptables"
    if loss:
        tools["ethtool"] = "ethtool"
    for tool, package in tools.items():
        if not shutil.which(tool):
            raise NetnsUnavailable(f"{tool} is not installed (Debian package {package}: apt-get install {package})")
    probe = f"mtprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        raise NetnsUnavailable(f"ip netns add failed: {made.stderr.strip()}")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def _tc(ns: str, *args: str) -> None:
    done = subprocess.run(["tc", "-n", ns, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"tc -n {ns} {' '.join(args)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class Host:
    name: str
    ns: str  # the namespace
    ip: str

    def argv(self, *cmd: str) -> list[str]:
        """A command line that runs ``cmd`` inside this host."""
        return ["ip", "netns", "exec", self.ns, *cmd]


@dataclass
class Fabric:
    """A set of hosts on one switch. Names are prefixed with the process id, so that fabrics of
    concurrent runs never meet."""

    prefix: str = field(default_factory=lambda: f"mt{os.getpid() % 100_000}")
    latency_ms: float = 0.0  # one way, added where each host receives
    loss: float = 0.0  # share of the packets each host receives that are dropped
    hosts: dict[str, Host] = field(default_factory=dict)
    racks: dict[str, str] = field(default_factory=dict)  # rack -> its uplink's core end
    ports: dict[str, str] = field(default_factory=dict)  # host -> its link's switch end
    _made: list[str] = field(default_factory=list)
    _delays: list[subprocess.Popen[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or not 0 <= self.loss < 1:
            raise ValueError("latency must not be negative and loss must be in [0, 1)")
        check_available(latency=self.latency_ms > 0, loss=self.loss > 0)
        self.switch = f"{self.prefix}-sw"
        self._add_ns(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")

    def _add_ns(self, ns: str) -> None:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # left over from a killed run
        _ip("netns", "add", ns)
        self._made.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def rack(self, name: str, *, uplink: str | None = None) -> str:
        """Add a rack: a bridge of its own behind an uplink to the core bridge, shaped to
        ``uplink`` each way (None: unshaped). Returns the bridge to give ``host``."""
        index = len(self.racks) + 1
        bridge, down, up = f"rk{index}", f"u{index}c", f"u{index}r"  # up: the rack's end
        _ip("-n", self.switch, "link", "add", bridge, "type", "bridge")
        _ip("-n", self.switch, "link", "set", bridge, "up")
        _ip("-n", self.switch, "link", "add", down, "type", "veth", "peer", "name", up)
        _ip("-n", self.switch, "link", "set", down, "master", "br0")
        _ip("-n", self.switch, "link", "set", up, "master", bridge)
        for dev in (down, up):
            _ip("-n", self.switch, "link", "set", dev, "up")
            if uplink:
                self._shape(self.switch, dev, uplink)
        self.racks[name] = down
        return bridge

    def partition(self, rack: str, cut: bool = True) -> None:
        """Cut ``rack`` off from everything outside it (its uplink down: 100 % loss both ways), or
        heal it."""
        _ip("-n", self.switch, "link", "set", self.racks[rack], "down" if cut else "up")

    def counters(self) -> tuple[dict[str, int], dict[str, int]]:
        """(bytes received by each host, bytes into each rack) so far, read in one call: every
        link's switch end is in the switch's namespace, and what it sends the other end receives."""
        received, racks, _ = self.all_counters()
        return received, racks

    def all_counters(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """``counters`` and the bytes each host sent (what its link's switch end received)."""
        out = subprocess.run(["ip", "-n", self.switch, "-j", "-s", "link", "show"], capture_output=True,
                             text=True, check=True).stdout
        links = json.loads(out)
        sent = {link["ifname"]: link["stats64"]["tx"]["bytes"] for link in links}
        got = {link["ifname"]: link["stats64"]["rx"]["bytes"] for link in links}
        return ({name: sent[port] for name, port in self.ports.items()},
                {name: sent[dev] for name, dev in self.racks.items()},
                {name: got[port] for name, port in self.ports.items()})

    @staticmethod
    def _shape(ns: str, dev: str, rate: str) -> None:
        # tbf: a token bucket at the link's rate, a 64 KiB burst and a queue of ~20 ms.
        _tc(ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "64kb", "latency", "20ms")

    def host(self, name: str, *, rate: str | None = None, bridge: str = "br0") -> Host:
        """Add a host linked to ``bridge`` (the core, or a rack's from ``rack``); ``rate`` like
        "100mbit" shapes its link each way (None: unshaped)."""
        index = len(self.hosts) + 1
        ns = f"{self.prefix}-{name}"
        self._add_ns(ns)
        port = f"p{index}"  # the switch's side; interface names are at most 15 characters
        _ip("link", "add", port, "netns", self.switch, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("-n", self.switch, "link", "set", port, "master", bridge)
        _ip("-n", self.switch, "link", "set", port, "up")
        ip = f"{SUBNET}.{index // 250}.{index % 250 + 1}"
        _ip("-n", ns, "addr", "add", f"{ip}/16", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        if rate:
            for where, dev in ((ns, "eth0"), (self.switch, port)):
                self._shape(where, dev, rate)
        host = Host(name, ns, ip)
        self._impair(host)
        self.hosts[name] = host
        self.ports[name] = port
        return host

    def _impair(self, host: Host) -> None:
        """This fabric's loss and latency on what ``host`` receives."""
        def run(*cmd: str) -> None:
            done = subprocess.run(host.argv(*cmd), capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(cmd)} in {host.name}: {done.stderr.strip()}")

        if self.loss > 0:
            run("ethtool", "-K", "eth0", "tso", "off", "gso", "off")
            run("iptables", "-w", "-A", "INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random",
                "--probability", f"{self.loss:.6f}", "-j", "DROP")
        if self.latency_ms > 0:
            # The listener first: without one, the kernel drops what the rule queues.
            delay = subprocess.Popen(host.argv(sys.executable, "-m", "tools.lab.linkdelay", "--delay-ms",
                                               str(self.latency_ms)), cwd=REPO, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
            self._delays.append(delay)
            assert delay.stdout is not None
            if delay.stdout.readline().strip() != "ready":
                raise RuntimeError(f"tools.lab.linkdelay in {host.name}: {delay.communicate()[1].strip()}")
            run("iptables", "-w", "-A", "INPUT", "-i", "eth0", "-j", "NFQUEUE", "--queue-num", "0")

    def close(self) -> None:
        for delay in self._delays:
            delay.kill()
            delay.communicate()  # reaps it and closes its pipes
        self._delays.clear()
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._made.clear()

    def __enter__(self) -> Fabric:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
