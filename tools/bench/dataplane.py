"""The host's data plane at full speed: what each stage costs per byte, side by side in one run.

    python -m tools.bench.dataplane [--size 4GiB] [--piece-size 64MiB] [--report results/dataplane/report.md]
        [--stripes K --sessions N]   # a striped version, the client's stripes over N sessions

Everything on loopback with no caps and no shaping, real processes as the CLI runs them, on one
generated model (two safetensors shards and a config): the SHA-256 floor (hashlib over the same
bytes, in this process), ``publish``, the seedbox ingesting from a local path and from an HTTP
origin, one client fetching from the seedbox, the seedbox feeding three clients at once (each in a
rack of its own, so each is a gateway the seedbox serves), and a stock libtorrent session
(``tools/bench/vanilla.py``) fetching the same torrent from the same seedbox.

For each process: GiB/s, CPU-s per GiB (all its threads), its busiest thread's CPU-s per GiB, peak
RSS, and what they imply for a host: the rate its busiest thread caps it at (one thread runs on one
core, so no core count lifts that) and the cores it needs at 10 and 25 Gbit/s. A client's rate is
its download time as it reports it; its CPU is the whole process (start-up and activation too),
and so is the stock session's. The model sits in the page cache (just written), so the disk is not
what is measured.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import peer_certs, signing
from common.units import parse_size
from tools.bench.cpu import Sampler, Usage, wait_exited
from tools.cli.publish import publish
from tools.demo.modelgen import generate_model
from tools.demo.procs import CLI, Procs, free_port, start_origin, start_tracker
from tracker.api_client import TrackerClient

GIB = 1 << 30
GBIT = 1e9 / 8  # bytes per second
NICS = (10, 25)  # Gbit/s: the mission's host NICs


@dataclass(frozen=True)
class Row:
    stage: str
    process: str
    moved: int  # bytes this process hashed, read, sent or received in the stage
    seconds: float  # the stage's time for those bytes
    cpu: float  # CPU seconds of the process in the stage
    busiest: tuple[str, float]  # its busiest thread: (name, CPU seconds)
    peak_rss: int

    @property
    def gib(self) -> float:
        return self.moved / GIB

    @property
    def rate(self) -> float:
        """GiB/s."""
        return self.gib / self.seconds

    @property
    def cpu_per_gib(self) -> float:
        return self.cpu / self.gib

    @property
    def busiest_per_gib(self) -> float:
        return self.busiest[1] / self.gib

    @property
    def thread_ceiling_gbit(self) -> float:
        """The rate the busiest thread caps a host at, Gbit/s."""
        return GIB / self.busiest_per_gib / GBIT if self.busiest_per_gib else float("inf")

    def cores_at(self, gbit: float) -> float:
        return self.cpu_per_gib * gbit * GBIT / GIB


class Bench:
    def __init__(self, work: Path, size: int, piece_size: int, torrent_format: str = "v2", stripes: int = 1,
                 sessions: int = 1, peer_auth: bool = False) -> None:
        self.work = work
        self.peer_auth = peer_auth
        self.stripes = stripes
        self.piece_size = piece_size
        self.torrent_format = torrent_format
        self.procs = Procs(work / "logs")
        self.sampler = Sampler()
        self.token = secrets.token_hex(16)
        self.model = work / "external" / "m"
        generate_model(self.model, size, shards=2)
        self.size = sum(p.stat().st_size for p in self.model.rglob("*") if p.is_file())
        self.key = work / "publisher.key"
        self.public = signing.generate_key(self.key)
        tracker_env = {}
        if peer_auth:  # SSL torrents: every peer connection over TLS (common/peer_certs.py)
            ca_cert, ca_key = peer_certs.make_ca()
            (work / "peer-ca.pem").write_text(ca_cert)
            (work / "peer-ca.key").write_text(ca_key)
            tracker_env = {"MODELTORRENT_TRACKER_PEER_CA_CERT": str(work / "peer-ca.pem"),
                           "MODELTORRENT_TRACKER_PEER_CA_KEY": str(work / "peer-ca.key")}
        self.tracker = start_tracker(self.procs, work / "tracker.db", self.token, interval=5, env=tracker_env)
        self.origin = start_origin(self.procs, self.model.parent)
        with TrackerClient(self.tracker, admin_token=self.token) as admin:
            self.seed_key = admin.add_host("seedbox", "dc1|pod1|seed", "seedbox")["passkey"]
            self.keys = [admin.add_host(f"h{i}", f"dc1|pod1|r{i}")["passkey"] for i in range(4)]
        self.seed_port = free_port()
        self.env = {"MODELTORRENT_ADMIN_TOKEN": self.token, "MODELTORRENT_CLIENT_SESSIONS": str(sessions)}

    def close(self) -> None:
        self.procs.stop_all()
        self.sampler.close()

    # -- one process --------------------------------------------------------------------------

    def _start(self, name: str, argv: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        """Start a process watched by the sampler, its stdout in a file of its own (the JSON result)."""
        out = self.work / "logs" / f"{name}.out"
        proc = self.procs.start(name, ["sh", "-c", 'exec "$@" > "$0"', str(out), *argv], env=self.env)
        self.sampler.watch(proc.pid)
        return proc, out

    def _run_to_exit(self, name: str, argv: list[str], timeout: float = 3600) -> tuple[Usage, float, str]:
        """Start a process and wait for it: its usage (total and peak as the kernel counted them,
        threads as last seen), wall seconds, and the last line it printed to stdout."""
        started = time.monotonic()
        proc, out = self._start(name, argv)
        code, cpu, rss = wait_exited(proc.pid, timeout)
        seconds = time.monotonic() - started
        if code != 0:
            raise RuntimeError(f"{name} exited {code}: {self.procs.log(name)[-2000:]}")
        last = (out.read_text().strip().splitlines() or [""])[-1]
        return Usage(cpu, self.sampler.usage(proc.pid).threads, rss), seconds, last

    def _wait_seeding(self, ref: str, workdir: Path, timeout: float = 3600) -> None:
        status = workdir / "status" / f"{ref}.json"
        deadline = time.monotonic() + timeout
        while not (status.exists() and json.loads(status.read_text()).get("state") == "seeding"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the seedbox did not finish {ref}: {self.procs.log('seedbox')[-2000:]}")
            time.sleep(0.05)

    # -- stages -------------------------------------------------------------------------------

    def floor(self) -> Row:
        cpu0, started = time.thread_time(), time.monotonic()
        for path in sorted(p for p in self.model.rglob("*") if p.is_file()):
            digest = hashlib.sha256()
            with open(path, "rb", buffering=0) as f:
                while chunk := f.read(8 << 20):
                    digest.update(chunk)
        cpu, seconds = time.thread_time() - cpu0, time.monotonic() - started
        return Row("SHA-256 floor", "hashlib, one thread", self.size, seconds, cpu, ("main", cpu), 0)

    def publish(self) -> Row:
        usage, seconds, _ = self._run_to_exit("publish", [
            *CLI, "publish", str(self.model), "--name", "m", "--version", "1", "--key", str(self.key),
            "--source", str(self.model), "--piece-size", str(self.piece_size), "--tracker", self.tracker,
            "--format", self.torrent_format, "--stripes", str(self.stripes),
            "--out", str(self.work / "out")])
        return Row("publish", "publish", self.size, seconds, usage.cpu, usage.busiest, usage.peak_rss)

    def ingest(self, name: str, ref: str, workdir: Path, source: str, *extra: str) -> Row:
        started = time.monotonic()
        proc = self.procs.start(name, [*CLI, "seedbox", "run", ref, "--tracker", self.tracker, "--passkey",
                                       self.seed_key, "--workdir", str(workdir), "--trust-key", self.public,
                                       *extra], env=self.env)
        self.sampler.watch(proc.pid)
        self._wait_seeding(ref, workdir)
        seconds = time.monotonic() - started
        usage = self.sampler.usage(proc.pid)
        return Row(f"seedbox ingest, {source}", "seedbox",
                   self.size, seconds, usage.cpu, usage.busiest, usage.peak_rss)

    def fetch(self, stage: str, hosts: list[int], *, vanilla: bool = False) -> list[Row]:
        """Clients ``hosts`` fetch m@1 from the seedbox at once; a row per client and the seedbox's."""
        seedbox_pid = self.procs.procs["seedbox"].pid
        before = self.sampler.usage(seedbox_pid)
        started = time.monotonic()
        runs = {}
        for i in hosts:
            root = self.work / f"h{i}"
            if vanilla:
                argv = [CLI[0], "-m", "tools.bench.vanilla", str(self.work / "out" / "m-1.torrent"), str(root),
                        f"127.0.0.1:{self.seed_port}"]
            else:
                argv = [*CLI, "client", "fetch", "m@1", "--tracker", self.tracker, "--passkey", self.keys[i],
                        "--root", str(root), "--listen", "127.0.0.1:0", "--trust-key", self.public, "--json"]
            runs[i] = self._start(f"{stage}-h{i}", argv)
        rows = []
        for i, (proc, out) in runs.items():
            code, cpu, rss = wait_exited(proc.pid, 3600)
            if code != 0:
                raise RuntimeError(f"{stage} h{i} exited {code}: {self.procs.log(f'{stage}-h{i}')[-2000:]}")
            seconds = json.loads(out.read_text().strip().splitlines()[-1])["download_seconds"]
            usage = self.sampler.usage(proc.pid)
            rows.append(Row(stage, "stock libtorrent" if vanilla else f"client h{i}", self.size, seconds, cpu,
                            usage.busiest, rss))
        wall = time.monotonic() - started
        seedbox = self.sampler.usage(seedbox_pid).since(before)
        rows.append(Row(stage, "seedbox (upload)", self.size * len(hosts), wall, seedbox.cpu, seedbox.busiest,
                        seedbox.peak_rss))
        for i in hosts:
            shutil.rmtree(self.work / f"h{i}", ignore_errors=True)  # disk for the next stage
        return rows

    def run(self) -> list[Row]:
        rows = [self.floor()]
        print(_line(rows[-1]), flush=True)
        rows.append(self.publish())
        print(_line(rows[-1]), flush=True)
        # The same bytes under another name are another torrent: ingested from the origin over HTTP.
        publish(self.model, name="mh", version="1", key_path=self.key, source=f"{self.origin}/m",
                piece_size=self.piece_size, tracker=self.tracker, admin_token=self.token,
                torrent_format=self.torrent_format)  # type: ignore[arg-type]
        rows.append(self.ingest("seedbox-http", "mh@1", self.work / "seedbox-http", "HTTP", "--listen",
                                f"127.0.0.1:{free_port()}", "--source", f"{self.origin}/m"))
        print(_line(rows[-1]), flush=True)
        self.procs.stop("seedbox-http")
        shutil.rmtree(self.work / "seedbox-http")
        rows.append(self.ingest("seedbox", "m@1", self.work / "seedbox", "path", "--listen",
                                f"127.0.0.1:{self.seed_port}"))
        print(_line(rows[-1]), flush=True)
        stages = [("one client", [0], False), ("three clients at once", [1, 2, 3], False)]
        # A striped version has no whole torrent for a stock session to fetch, and an SSL torrent
        # takes no peer without a certificate from the tracker.
        if self.stripes == 1 and not self.peer_auth:
            stages.append(("stock libtorrent session", [0], True))
        for stage, hosts, vanilla in stages:
            rows += self.fetch(stage, hosts, vanilla=vanilla)
            for row in rows[-len(hosts) - 1:]:
                print(_line(row), flush=True)
        return rows


HEAD = ("| stage | process | GiB/s | CPU-s/GiB | busiest thread CPU-s/GiB | its ceiling Gbit/s | "
        "cores at 10 / 25 Gbit/s | peak RSS MiB |\n|---|---|---|---|---|---|---|---|")


def _line(r: Row) -> str:
    name, _ = r.busiest
    ceiling = "∞" if r.thread_ceiling_gbit == float("inf") else f"{r.thread_ceiling_gbit:.1f}"
    return (f"| {r.stage} | {r.process} | {r.rate:.2f} | {r.cpu_per_gib:.2f} | {r.busiest_per_gib:.2f} ({name}) | "
            f"{ceiling} | {r.cores_at(NICS[0]):.1f} / {r.cores_at(NICS[1]):.1f} | {r.peak_rss / 2**20:.0f} |")


def verdicts(rows: list[Row]) -> list[str]:
    """The issue's targets, judged on this run's figures."""
    by = {(r.stage, r.process): r for r in rows}
    floor, pub = by[("SHA-256 floor", "hashlib, one thread")], by[("publish", "publish")]
    client, stock = by[("one client", "client h0")], by.get(("stock libtorrent session", "stock libtorrent"))
    ingest = by[("seedbox ingest, path", "seedbox")]

    def say(ok: bool, text: str) -> str:
        return f"- {'met' if ok else 'NOT met'}: {text}"

    return [
        say(client.cpu_per_gib <= 4 * floor.cpu_per_gib,
            f"client fetch at most 4x the SHA-256 floor's CPU per GiB: {client.cpu_per_gib:.2f} = "
            f"{client.cpu_per_gib / floor.cpu_per_gib:.1f}x of {floor.cpu_per_gib:.2f}"),
        say(client.rate >= 1.3 * stock.rate,
            f"client fetch at least 1.3x the stock libtorrent session's rate: {client.rate:.2f} vs "
            f"{stock.rate:.2f} GiB/s = {client.rate / stock.rate:.2f}x") if stock else
        "- not judged: client fetch against a stock libtorrent session (a striped version has no whole torrent)",
        say(ingest.cpu_per_gib <= 2.6 and ingest.rate >= 0.5,
            f"seedbox ingest from a path at most 2.6 CPU-s/GiB and at least 0.5 GiB/s: "
            f"{ingest.cpu_per_gib:.2f} CPU-s/GiB, {ingest.rate:.2f} GiB/s"),
        say(pub.rate >= 1.0, f"publish at least 1 GiB/s: {pub.rate:.2f} GiB/s"),
    ]


def report(rows: list[Row], size: int, piece_size: int, torrent_format: str, seconds: float,
           stripes: int = 1, sessions: int = 1, peer_auth: bool = False) -> str:
    lines = [
        f"# Data-plane benchmark: the host at full speed ({torrent_format} torrent)",
        "",
        f"`python -m tools.bench.dataplane --size {size / GIB:g}GiB --piece-size {piece_size >> 20}MiB "
        f"--format {torrent_format}"
        + (f" --stripes {stripes} --sessions {sessions}" if stripes > 1 else "")
        + (" --peer-auth" if peer_auth else "") + "` "
        f"({os.cpu_count()} cores, loopback, no caps; {time.strftime('%Y-%m-%d')}; the run took {seconds:.0f} s).",
        "Busiest thread: the one thread of the process that used the most CPU; \"its ceiling\" is the rate "
        "that thread alone caps a host at. Cores at 10 / 25 Gbit/s: the process's CPU per GiB at that rate.",
        "",
        HEAD, *(_line(r) for r in rows), "",
        "Targets (the data-plane issue):", "", *verdicts(rows), "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="4GiB", help="model size (default: 4GiB)")
    parser.add_argument("--piece-size", default="64MiB", help="piece size (default: 64MiB)")
    parser.add_argument("--format", choices=["v2", "hybrid"], default="v2",
                        help="torrent format published (default: v2)")
    parser.add_argument("--stripes", type=int, default=1,
                        help="publish the model in this many stripes (default: 1; no stock-session stage then)")
    parser.add_argument("--sessions", type=int, default=1,
                        help="libtorrent sessions a client spreads the stripes over (default: 1)")
    parser.add_argument("--peer-auth", action="store_true",
                        help="the tracker with a peer CA: SSL torrents, peers talk only to registered hosts "
                        "(no stock-session stage then)")
    parser.add_argument("--report", type=Path, default=Path("results/dataplane/report.md"),
                        help="where the Markdown report goes (default: results/dataplane/report.md)")
    parser.add_argument("--workdir", type=Path, help="keep everything here (default: a temporary folder, removed)")
    args = parser.parse_args()
    if args.stripes < 1 or args.sessions < 1:
        parser.error("--stripes and --sessions must be at least 1")
    try:
        size, piece_size = parse_size(args.size), parse_size(args.piece_size)
    except ValueError as exc:
        parser.error(str(exc))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="modeltorrent-bench-dataplane-"))
    work.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(work).free
    if free < 7 * size:  # the model, the seedboxes' copies, three clients' copies
        parser.error(f"{work} has {free / GIB:.1f} GiB free; this run needs about {7 * size / GIB:.1f}")
    started = time.monotonic()
    print(HEAD, flush=True)
    bench = Bench(work, size, piece_size, args.format, args.stripes, args.sessions, args.peer_auth)
    try:
        rows = bench.run()
    finally:
        bench.close()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    text = report(rows, bench.size, piece_size, args.format, time.monotonic() - started, args.stripes, args.sessions,
                  args.peer_auth)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(text)
    # The figures as data, for the simulator's per-host ceiling (tools/sim/ceiling.py).
    args.report.with_suffix(".json").write_text(json.dumps({"cores": os.cpu_count(), "rows": [
        {"stage": r.stage, "process": r.process, "gib_per_s": r.rate, "cpu_per_gib": r.cpu_per_gib,
         "busiest_thread": r.busiest[0], "busiest_per_gib": r.busiest_per_gib} for r in rows]}, indent=2))
    print("\n".join(verdicts(rows)))
    print(f"report: {args.report} (figures: {args.report.with_suffix('.json')})")


if __name__ == "__main__":
    main()
