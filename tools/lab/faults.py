"""Faults to inject into a running distribution in the emulated datacenter (``Lab.distribute(...,
faults=[...])``): clients and the seedbox killed with SIGKILL and restarted, a rack cut off and
healed. Each records what it did and what it saw, for the test or report to judge."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field
from typing import Protocol

from tools.lab.lab import Lab
from tools.lab.measure import Sample


class Fault(Protocol):
    """Something that goes wrong during a distribution: looked at every poll with the time since the
    start and the latest byte counters."""

    def poll(self, lab: Lab, elapsed: float, sample: Sample) -> None: ...


@dataclass
class KilledClient:
    host: str
    at: float  # seconds since the start
    received_before: int  # bytes its NIC had received when it was killed
    verified_pieces: list[int]  # the pieces its saved state called verified then


@dataclass
class KillClients:
    """SIGKILL each of ``hosts`` once its NIC has received ``fraction`` of the model and it has saved
    verified pieces (its state lists some), and start it again at once with the same command (as
    systemd would). Killed before its first save (every 5 s, the first 5 s after the agent began,
    which may be seconds before the lab's clock) a host has nothing to keep: the fault would not
    test what it is for."""

    hosts: list[str]
    size: int
    fraction: float = 0.4
    killed: dict[str, KilledClient] = field(default_factory=dict)

    def poll(self, lab: Lab, elapsed: float, sample: Sample) -> None:
        for host in self.hosts:
            if host in self.killed or sample.hosts.get(host, 0) < self.fraction * self.size:
                continue
            state = lab.workdir / "hosts" / host / "m" / "state" / "1.verified.json"
            pieces = json.loads(state.read_text())["pieces"] if state.exists() else []  # written atomically
            if not pieces:
                continue
            lab.procs.stop(host, signal.SIGKILL)
            self.killed[host] = KilledClient(host, elapsed, sample.hosts[host], pieces)
            lab.procs.start(host, lab.argv[host])


@dataclass
class KillSeedbox:
    """SIGKILL the seedbox once it has ingested ``fraction`` of the model's pieces, and start it
    again at once."""

    fraction: float = 0.5
    killed_at: float | None = None
    pieces_done: int = 0

    def poll(self, lab: Lab, elapsed: float, sample: Sample) -> None:
        status = lab.workdir / "seedbox" / "status" / "m@1.json"
        if self.killed_at is not None or not status.exists():
            return
        try:
            now = json.loads(status.read_text())
        except json.JSONDecodeError:  # being rewritten
            return
        if now["pieces_done"] >= self.fraction * now["pieces_total"]:
            lab.procs.stop("seedbox", signal.SIGKILL)
            self.killed_at, self.pieces_done = elapsed, now["pieces_done"]
            lab.procs.start("seedbox", lab.argv["seedbox"])


@dataclass
class Partition:
    """Cut ``rack`` off (its uplink down, 100 % loss both ways) from ``at`` seconds for ``seconds``,
    then heal it."""

    rack: str
    at: float
    seconds: float
    cut_at: float | None = None
    healed_at: float | None = None

    def poll(self, lab: Lab, elapsed: float, sample: Sample) -> None:
        if self.cut_at is None and elapsed >= self.at:
            lab.fabric.partition(self.rack)
            self.cut_at = elapsed
        elif self.cut_at is not None and self.healed_at is None and elapsed >= self.cut_at + self.seconds:
            lab.fabric.partition(self.rack, cut=False)
            self.healed_at = elapsed


@dataclass
class EvilPeer:
    """A registered host in ``rack`` that claims every piece and serves random bytes (``evil_argv``
    runs it, given the tracker URL, its passkey, a folder and the model's), started at the first look."""

    rack: str
    evil_argv: list[str]
    host: str = "evil"
    ip: str = ""

    def before_start(self, lab: Lab) -> None:
        """In the swarm, serving junk, before the seedbox starts: started at the first poll, it
        could spend half the run copying and checking the model (seen: one piece of junk in a run,
        nobody banned it)."""
        self.poll(lab, 0.0, None)
        lab.wait_for(lambda: any(line.startswith("{") for line in lab.procs.log(self.host).splitlines()),
                     "the corrupt peer seeding its junk")

    def poll(self, lab: Lab, elapsed: float, sample: Sample | None) -> None:
        if self.ip:
            return
        host = lab.fabric.host(self.host, rate=f"{lab.topology.nic_mbit}mbit", bridge=lab.bridges[self.rack])
        passkey = lab.passkey(host, f"dc1|pod1|{self.rack}")
        folder, model = lab.workdir / "hosts" / self.host, lab.workdir / "external" / "m"
        lab.procs.start(self.host, host.argv(*self.evil_argv, lab.tracker_url, passkey, str(folder), str(model)))
        self.ip = host.ip


@dataclass
class KillGateway:
    """SIGKILL, for good (a host that died), the host through which stripe ``stripe`` enters
    ``rack``, once its NIC has received ``fraction`` of the model (``size`` bytes). Records which
    host and when (``wall``: the clock of the tracker's log, which names the stand-in)."""

    rack: str
    stripe: int
    size: int
    fraction: float = 0.3
    host: str | None = None
    at: float | None = None  # seconds since the start
    wall: float | None = None

    def poll(self, lab: Lab, elapsed: float, sample: Sample) -> None:
        if self.at is not None:
            return
        gateway = lab.gateway_of(self.rack, self.stripe)
        if gateway is None or sample.hosts.get(gateway, 0) < self.fraction * self.size:
            return
        lab.procs.stop(gateway, signal.SIGKILL)
        lab.gone.add(gateway)
        self.host, self.at, self.wall = gateway, elapsed, time.time()


@dataclass
class KillTracker:
    """SIGKILL the tracker on ``host`` (one of a failover pair: ``Lab(trackers=2)``) for good, once
    the hosts have received ``fraction`` of the model (``size`` bytes) on average. Records when, and
    how much every host had then."""

    size: int
    host: str = "tracker"
    fraction: float = 0.3
    at: float | None = None
    received: dict[str, int] = field(default_factory=dict)

    def poll(self, lab: Lab, elapsed: float, sample: Sample) -> None:
        if self.at is not None or not sample.hosts:
            return
        if sum(sample.hosts.values()) < self.fraction * self.size * len(sample.hosts):
            return
        lab.procs.stop(self.host, signal.SIGKILL)
        self.at, self.received = elapsed, dict(sample.hosts)


@dataclass
class RestartTracker:
    """SIGKILL the tracker ``at`` seconds in and start it again at once with the same command (as
    systemd would): its state is the database's."""

    at: float
    done_at: float | None = None

    def poll(self, lab: Lab, elapsed: float, sample: Sample) -> None:
        if self.done_at is None and elapsed >= self.at:
            lab.procs.stop("tracker", signal.SIGKILL)
            lab.procs.start("tracker", lab.argv["tracker"], env=lab.tracker_env)
            self.done_at = elapsed
