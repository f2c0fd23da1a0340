"""An emulated datacenter on one machine, and one model distributed through it.

    python -m tools.lab up [--racks 2] [--hosts-per-rack 3] [--nic 200] [--uplink 100] [--ingress 50]

builds the network and waits (Ctrl-C tears it down); in code::

    lab = Lab(Topology(racks=2, hosts_per_rack=3, nic_mbit=200, uplink_mbit=100, ingress_mbit=50))
    with lab:
        result = lab.distribute(size=64 * MiB)

Built from ``tools/netns.py``: the external storage (an HTTP origin) sits behind the ingress link
(``ingress_mbit``, its NIC); the tracker and the seedbox on the core switch; each rack a bridge
behind an uplink (``uplink_mbit`` each way, None: unshaped) with ``hosts_per_rack`` hosts whose
NICs are shaped to ``nic_mbit`` each way. Every process runs in its host's namespace with its own
address, as the CLI runs it. ``distribute`` publishes a generated model, starts the seedbox and
one ``client fetch`` per host at once, and measures: time to every host activated, the physical
limit ``T_min`` for the topology (``tools/physics.py``), bytes read from external storage and
bytes that crossed rack uplinks, per-host completion times, and how busy the CPUs were (a
saturated run measures the machine, not the network).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from common import signing
from tools.modelgen import generate_model
from tools.netns import Fabric, Host, NetnsUnavailable
from tools.physics import mbit, t_min
from tools.procs import CLI, REPO, Procs

PORT_TRACKER, PORT_ORIGIN = 8000, 9000


INTERVAL = 5  # the tracker's announce interval in the lab, s
PIECE = 1 << 20  # the torrents' piece size in the lab: tens of pieces for a model of tens of MiB


@dataclass(frozen=True)
class Topology:
    racks: int = 2
    hosts_per_rack: int = 3
    nic_mbit: float = 200.0
    uplink_mbit: float | None = None
    ingress_mbit: float = 50.0
    latency_ms: float = 0.0  # one way, on every link into a host (tools/netns.py)
    loss: float = 0.0  # share of the packets dropped on every link into a host

    @property
    def hosts(self) -> int:
        return self.racks * self.hosts_per_rack


@dataclass(frozen=True)
class Sample:
    at: float
    hosts: dict[str, int]  # bytes received by each client host
    racks: dict[str, int]  # bytes into each rack over its uplink
    seedbox: int = 0  # bytes received by the seedbox (from external storage, nearly all)


@dataclass
class Result:
    hosts: int
    size: int
    seconds: float  # start to the last host activated
    t_min: float
    source_bytes: int  # read from external storage
    cross_rack_bytes: int  # into racks over their uplinks
    racks: int
    completion: list[float] = field(default_factory=list)  # per host, seconds from the start
    cpu_busy: float = 0.0  # share of all cores busy during the run
    # byte counters over time, every ~0.25 s
    timeline: list[Sample] = field(default_factory=list)

    @property
    def ingress_start(self) -> float:
        """Seconds from the start to the seedbox's first bytes from external storage (its start-up:
        process, manifest, session, first announce), to the counters' resolution."""
        return next((s.at for s in self.timeline if s.seedbox > 64 * 1024), 0.0)

    @property
    def ratio(self) -> float:
        return self.seconds / self.t_min

    def summary(self) -> dict[str, Any]:
        done = sorted(self.completion)
        return {
            "hosts": self.hosts, "seconds": round(self.seconds, 2), "t_min": round(self.t_min, 2),
            "t_over_t_min": round(self.ratio, 2), "source_bytes_over_size": round(self.source_bytes / self.size, 3),
            "cross_rack_over_min": round(self.cross_rack_bytes / (self.racks * self.size), 2),
            "p50": round(statistics.median(done), 2), "p99": round(done[min(len(done) - 1, int(len(done) * 0.99))], 2),
            "max": round(done[-1], 2), "cpu_busy": round(self.cpu_busy, 2),
        }


class Fault(Protocol):
    """Something that goes wrong during a distribution (tools/lab_faults.py): looked at every poll
    with the time since the start and the latest byte counters."""

    def poll(self, lab: Lab, elapsed: float, sample: Sample) -> None: ...


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot (/proc/stat)."""
    fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class Lab:
    def __init__(self, topology: Topology, workdir: Path | None = None, env: dict[str, str] | None = None) -> None:
        """``env``: settings for every process in the lab (e.g. ``MODELTORRENT_CLIENT_UPLOAD_SLOTS``)."""
        self.topology = topology
        self.workdir = (workdir or Path(tempfile.mkdtemp(prefix="modeltorrent-lab-"))).resolve()
        self.procs = Procs(self.workdir / "logs", env=dict(env or {}))
        self.token = secrets.token_hex(16)
        self.env = os.environ | self.procs.env | {"PYTHONPATH": str(REPO), "MODELTORRENT_ADMIN_TOKEN": self.token}
        self.fabric = Fabric(latency_ms=topology.latency_ms, loss=topology.loss)
        try:
            t = topology
            self.storage = self.fabric.host("storage", rate=f"{t.ingress_mbit}mbit")
            self.tracker = self.fabric.host("tracker")
            self.seedbox = self.fabric.host("seedbox", rate=f"{t.nic_mbit}mbit")
            self.rack_of: dict[str, str] = {}
            self.bridges: dict[str, str] = {}  # rack -> its bridge, for hosts added later
            self.clients: list[Host] = []
            for r in range(t.racks):
                rack = f"rack{r + 1}"
                bridge = self.bridges[rack] = self.fabric.rack(rack, uplink=f"{t.uplink_mbit}mbit"
                                                               if t.uplink_mbit else None)
                for h in range(t.hosts_per_rack):
                    host = self.fabric.host(f"r{r + 1}h{h + 1}", rate=f"{t.nic_mbit}mbit", bridge=bridge)
                    self.clients.append(host)
                    self.rack_of[host.name] = rack
        except BaseException:
            self.fabric.close()
            raise
        self.tracker_url = f"http://{self.tracker.ip}:{PORT_TRACKER}"
        self.argv: dict[str, list[str]] = {}  # each service's command line, to restart it after a fault

    # -- running things in hosts --------------------------------------------------------------

    def cli(self, host: Host, *argv: str, timeout: float = 300) -> str:
        done = subprocess.run(host.argv(*CLI, *argv), capture_output=True, text=True, cwd=REPO, env=self.env,
                              timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} on {host.name} failed: {done.stderr[-2000:]}")
        return done.stdout

    def _wait(self, ready: Any, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what} (logs in {self.procs.log_dir})")
            time.sleep(0.2)

    def _answers(self, host: Host, url: str) -> bool:
        probe = [CLI[0], "-c", f"import httpx; httpx.get({url!r}, timeout=2).raise_for_status()"]
        return subprocess.run(host.argv(*probe), capture_output=True, env=self.env).returncode == 0

    def start_services(self, model: Path, tracker_env: dict[str, str] | None = None) -> None:
        """The origin (serving ``model``'s parent folder), the tracker."""
        self.procs.start("origin", self.storage.argv(CLI[0], "-m", "tools.origin", "--root", str(model.parent),
                                                     "--host", "0.0.0.0", "--port", str(PORT_ORIGIN)))
        self.procs.start("tracker", self.tracker.argv(
            *CLI, "tracker", "serve", "--host", "0.0.0.0", "--port", str(PORT_TRACKER),
            "--db", f"sqlite:///{self.workdir / 'tracker.db'}", "--interval", str(INTERVAL)),
            env={"MODELTORRENT_ADMIN_TOKEN": self.token} | (tracker_env or {}))
        self._wait(lambda: self._answers(self.tracker, f"{self.tracker_url}/healthz"), "the tracker")
        self._wait(lambda: self._answers(self.storage, f"http://{self.storage.ip}:{PORT_ORIGIN}/_stats"), "the origin")

    def passkey(self, host: Host, location: str, *extra: str) -> str:
        return self.cli(self.tracker, "hosts", "add", host.name, "--location", location, *extra,
                        "--tracker", self.tracker_url).strip().splitlines()[-1]

    # -- one distribution ---------------------------------------------------------------------

    def _model(self, size: int) -> tuple[Path, int]:
        model = self.workdir / "external" / "m"
        generate_model(model, size)
        return model, sum(p.stat().st_size for p in model.rglob("*") if p.is_file())

    def _bound(self, size: int) -> float:
        t, n = self.topology, len(self.clients)
        return t_min(size, mbit(t.ingress_mbit), [mbit(t.nic_mbit)] * n, [mbit(t.nic_mbit)] * n,
                     mbit(t.uplink_mbit) if t.uplink_mbit else None)

    def _run_until_done(self, started: float, done_when: Any, base: tuple[dict[str, int], dict[str, int]],
                        faults: Sequence[Fault] = ()) -> tuple[dict[str, float], list[Sample]]:
        """Wait for every client to be done; returns when each was and the byte counters over time
        (counted from ``base``, the counters read just before the start). ``faults`` act first at
        every look."""
        done: dict[str, float] = {}
        timeline: list[Sample] = []

        def sample(final: bool = False) -> None:
            now = time.monotonic() - started
            if timeline and now - timeline[-1].at < 0.25 and not final:
                return
            hosts, racks = self.fabric.counters()
            timeline.append(Sample(now, {h: v - base[0][h] for h, v in hosts.items() if h in self.rack_of},
                                   {r: v - base[1][r] for r, v in racks.items()},
                                   hosts["seedbox"] - base[0]["seedbox"]))

        def all_done() -> bool:
            sample()
            for fault in faults:
                fault.poll(self, time.monotonic() - started, timeline[-1])
            for host in self.clients:
                if host.name not in done and done_when(host):
                    done[host.name] = time.monotonic() - started
                proc = self.procs.procs[host.name]
                if host.name not in done and proc.poll() is not None and proc.returncode != 0:
                    raise RuntimeError(f"{host.name} exited: {self.procs.log(host.name)[-2000:]}")
            return len(done) == len(self.clients)

        self._wait(all_done, "every host done", timeout=3600)
        sample(final=True)
        return done, timeline

    def pull_direct(self, size: int) -> Result:
        """The naive way: every host downloads the model from external storage over HTTP, through
        the ingress link, all at once."""
        model, size = self._model(size)
        files = [str(p.relative_to(model)) for p in sorted(model.rglob("*")) if p.is_file()]
        self.start_services(model)
        sent_before = self.storage_bytes_sent()
        counters = self.fabric.counters()
        busy0, total0 = _cpu_times()
        started = time.monotonic()
        base = f"http://{self.storage.ip}:{PORT_ORIGIN}/m/"
        for host in self.clients:
            out = self.workdir / "hosts" / host.name
            self.procs.start(host.name, host.argv(CLI[0], "-m", "tools.pull", base, str(out), *files))
        done, timeline = self._run_until_done(started, lambda h: self.procs.procs[h.name].poll() == 0, counters)
        busy1, total1 = _cpu_times()
        return Result(len(self.clients), size, max(done.values()), self._bound(size),
                      self.storage_bytes_sent() - sent_before, sum(timeline[-1].racks.values()), self.topology.racks,
                      [done[h.name] for h in self.clients], (busy1 - busy0) / max(total1 - total0, 1), timeline)

    def _announces(self) -> int:
        """Peers in the tracker's swarms: read from its database file (the tracker writes them
        behind within 0.1 s), not over HTTP, which from here would cost a process per look."""
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.workdir / 'tracker.db'}?mode=ro", uri=True)) as db:
                return int(db.execute("SELECT count(*) FROM peer").fetchone()[0])
        except sqlite3.Error:  # not created yet, or busy: look again
            return 0

    def storage_stats(self) -> dict[str, Any]:
        """The origin's counters (tools/origin.py): bytes delivered and written, the reads."""
        url = f"http://{self.storage.ip}:{PORT_ORIGIN}/_stats"
        out = subprocess.run(self.storage.argv(CLI[0], "-c", f"import httpx; print(httpx.get({url!r}).text)"),
                             capture_output=True, text=True, check=True, env=self.env).stdout
        stats: dict[str, Any] = json.loads(out)
        return stats

    def storage_bytes_sent(self) -> int:
        return int(self.storage_stats()["bytes_sent"])

    def distribute(self, size: int, piece_size: int = PIECE, *, stock: bool = False,
                   faults: Sequence[Fault] = ()) -> Result:
        """modeltorrent: publish a generated model of ``size`` bytes and fetch it on every client
        host at once (streaming seedbox, rack-aware peer lists). ``stock``: plain BitTorrent
        instead, the seedbox seeding only once it has the whole model and the tracker handing
        out peers at random. ``faults`` (tools/lab_faults.py) are injected while it runs."""
        model, size = self._model(size)
        key = self.workdir / "publisher.key"
        public = signing.generate_key(key)
        self.start_services(model, {"MODELTORRENT_TRACKER_RACK_AWARE": "false"} if stock else None)
        source = f"http://{self.storage.ip}:{PORT_ORIGIN}/m"
        self.cli(self.tracker, "publish", str(model), "--name", "m", "--version", "1", "--key", str(key),
                 "--source", source, "--piece-size", str(piece_size), "--tracker", self.tracker_url)
        seed_key = self.passkey(self.seedbox, "dc1|pod1|seedbox", "--seedbox")
        keys = {h.name: self.passkey(h, f"dc1|pod1|{self.rack_of[h.name]}") for h in self.clients}
        # The hosts' agents run all the time in a datacenter: here they start first and the clock
        # starts once each has announced (seven Python processes starting at once on two cores
        # would otherwise add seconds that no datacenter host spends).
        for host in self.clients:
            self.argv[host.name] = host.argv(
                *CLI, "client", "fetch", "m@1", "--tracker", self.tracker_url, "--passkey", keys[host.name],
                "--root", str(self.workdir / "hosts" / host.name), "--listen", "0.0.0.0:6881",
                "--trust-key", public, "--seed-for", "-1")
            self.procs.start(host.name, self.argv[host.name])
        self._wait(lambda: self._announces() >= len(self.clients), "every host's first announce")
        sent_before = self.storage_bytes_sent()  # measured at the storage: counts across seedbox restarts
        counters = self.fabric.counters()
        busy0, total0 = _cpu_times()
        started = time.monotonic()
        self.argv["seedbox"] = self.seedbox.argv(
            *CLI, "seedbox", "run", "m@1", "--tracker", self.tracker_url, "--passkey", seed_key,
            "--workdir", str(self.workdir / "seedbox"), "--listen", "0.0.0.0:6881", "--trust-key", public)
        self.procs.start("seedbox", self.argv["seedbox"],
                         env={"MODELTORRENT_SEEDBOX_STREAM": "false"} if stock else None)
        done, timeline = self._run_until_done(
            started, lambda h: (self.workdir / "hosts" / h.name / "m" / "current").exists(), counters, faults)
        busy1, total1 = _cpu_times()
        return Result(len(self.clients), size, max(done.values()), self._bound(size),
                      self.storage_bytes_sent() - sent_before,
                      sum(timeline[-1].racks.values()), self.topology.racks, [done[h.name] for h in self.clients],
                      (busy1 - busy0) / max(total1 - total0, 1), timeline)

    def close(self) -> None:
        self.procs.stop_all()
        self.fabric.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
        if kind is None and not os.environ.get("MODELTORRENT_LAB_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)


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
