"""libtorrent settings for fast links, each measured against libtorrent's defaults in one run.

    python -m tools.bench.tune [--size 2GiB] [--rounds 3] [--only NAME,...] [--report results/tune/report.md]

The data-plane benchmark's setup (a generated model, a tracker, ``publish``, the seedbox ingesting
it from a path), then one client fetching the model from the seedbox over and over, loopback, no
caps: once per round with each candidate. A candidate is a set of libtorrent settings for the
client's session, the seedbox's, or both (given to each process through
``MODELTORRENT_LT_SETTINGS``; the seedbox is restarted for its own). Each round runs every
candidate back to back with a baseline fetch (the settings modeltorrent ships), in alternating order, and a
candidate is judged by its ratios to the baseline beside it, median over rounds: this machine is
shared (40 % CPU steal seen) and its speed drifts by tens of percent within minutes.

Printed per candidate: the client's GiB/s, its CPU-s per GiB and its busiest thread's, the seedbox's
CPU-s per GiB uploading, and the ratios to the baseline. A setting is worth keeping if it lowers
the CPU per GiB of the side it is on (what a 25 Gbit/s NIC meets) or raises the rate, and hurts
neither.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import libtorrent as lt

from common.units import parse_size
from tools.bench.dataplane import GIB, Bench, Row
from tools.demo.procs import free_port

NO_MMAP = 1 << 30  # mmap_file_size_cutoff in 16 KiB blocks: every file below 16 TiB uses pread/pwrite
PWRITE = int(lt.mmap_write_mode_t.always_pwrite)


@dataclass(frozen=True)
class Candidate:
    name: str
    client: dict[str, object] = field(default_factory=dict)
    seedbox: dict[str, object] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [f"client {json.dumps(self.client)}" if self.client else "",
                 f"seedbox {json.dumps(self.seedbox)}" if self.seedbox else ""]
        return "; ".join(p for p in parts if p) or "the settings modeltorrent ships (common/lt_session.py)"


BASELINE = Candidate("baseline")
CANDIDATES = [
    BASELINE,
    # hashing: one thread by default; the client's busiest thread is the one that hashes
    Candidate("hashing_threads 2", client={"hashing_threads": 2}),
    # disk: libtorrent 2.1 maps files and writes through the map by default
    Candidate("pwrite", client={"disk_write_mode": PWRITE}),
    Candidate("no mmap", client={"mmap_file_size_cutoff": NO_MMAP}, seedbox={"mmap_file_size_cutoff": NO_MMAP}),
    # disk threads: libtorrent's default is 10 (2 helped this fetch but slowed the lab's swarm)
    Candidate("aio_threads 2", client={"aio_threads": 2}, seedbox={"aio_threads": 2}),
    Candidate("aio_threads 4", client={"aio_threads": 4}, seedbox={"aio_threads": 4}),
    # the uploader's send buffer: 500 KB by default
    Candidate("send watermark 4 MiB", seedbox={"send_buffer_watermark": 4 << 20}),
    Candidate("send watermark 16 MiB", seedbox={"send_buffer_watermark": 16 << 20}),
    # socket buffers (0: the kernel's autotuning)
    Candidate("socket buffers 4 MiB", client={"recv_socket_buffer_size": 4 << 20},
              seedbox={"send_socket_buffer_size": 4 << 20}),
    # request queue depth: requests kept in flight to a peer
    Candidate("request queue 2000", client={"max_out_request_queue": 2000, "request_queue_time": 5},
              seedbox={"max_allowed_in_request_queue": 4000}),
    Candidate("peer recv buffer 8 MiB", client={"max_peer_recv_buffer_size": 8 << 20}),
    Candidate("disk queue 256 MiB", client={"max_queued_disk_bytes": 256 << 20}),
    Candidate("pwrite + aio_threads 2 + recv buffer 8 MiB",
              client={"disk_write_mode": PWRITE, "aio_threads": 2, "max_peer_recv_buffer_size": 8 << 20},
              seedbox={"aio_threads": 2}),
]


@dataclass
class Trial:
    candidate: str
    round: int
    client: Row
    seedbox: Row
    baseline: Trial | None = None  # the baseline fetch run right before or after this one


class Tuner:
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.seedbox_settings: dict[str, object] | None = None
        self.base_env = dict(bench.env)

    def seedbox(self, settings: dict[str, object]) -> None:
        """The seedbox seeding m@1 with these libtorrent settings (restarted if they differ)."""
        if settings == self.seedbox_settings:
            return
        bench = self.bench
        if self.seedbox_settings is not None:
            bench.procs.stop("seedbox")
            # the last run's "seeding" would end the wait before this one has checked its files
            (bench.work / "seedbox" / "status" / "m@1.json").unlink(missing_ok=True)
        bench.env = self.base_env | {"MODELTORRENT_LT_SETTINGS": json.dumps(settings)}
        bench.ingest("seedbox", "m@1", bench.work / "seedbox", "path", "--listen", f"127.0.0.1:{bench.seed_port}")
        self.seedbox_settings = settings

    def trial(self, candidate: Candidate, round_: int) -> Trial:
        self.seedbox(candidate.seedbox)
        self.bench.env = self.base_env | {"MODELTORRENT_LT_SETTINGS": json.dumps(candidate.client)}
        client, seedbox = self.bench.fetch(candidate.name, [0])
        return Trial(candidate.name, round_, client, seedbox)

    def pair(self, candidate: Candidate, round_: int, baseline_first: bool) -> tuple[Trial, Trial]:
        """The candidate and the baseline back to back: the load this shared machine is under drifts
        by tens of percent within minutes, far more than most settings change."""
        if baseline_first:
            base = self.trial(BASELINE, round_)
            mine = self.trial(candidate, round_)
        else:
            mine = self.trial(candidate, round_)
            base = self.trial(BASELINE, round_)
        mine.baseline = base
        return base, mine


def rotated(candidates: list[Candidate], round_: int) -> list[Candidate]:
    """Each round starts elsewhere, so no candidate always runs at the same point of the run."""
    k = round_ % len(candidates)
    return candidates[k:] + candidates[:k]


@dataclass(frozen=True)
class Verdict:
    candidate: Candidate
    rate: float  # client GiB/s, median
    client_cpu: float  # CPU-s per GiB, median
    client_busiest: float
    seedbox_cpu: float
    rate_ratio: float  # to the baseline run beside it, median
    client_cpu_ratio: float
    seedbox_cpu_ratio: float
    spread: tuple[float, float]  # the lowest and highest client CPU ratio seen


def _median(trials: list[Trial], f: Callable[[Trial], float]) -> float:
    return statistics.median(f(t) for t in trials)


def _ratios(trials: list[Trial], f: Callable[[Trial], float]) -> list[float]:
    """Each trial's figure over that of the baseline run beside it (1 for the baseline's own)."""
    return [f(t) / f(t.baseline) if t.baseline else 1.0 for t in trials]


def judge(candidates: list[Candidate], trials: list[Trial]) -> list[Verdict]:
    verdicts = []
    for c in candidates:
        mine = [t for t in trials if t.candidate == c.name]
        if not mine:
            continue
        cpu_ratios = _ratios(mine, lambda t: t.client.cpu_per_gib)
        verdicts.append(Verdict(
            c, _median(mine, lambda t: t.client.rate), _median(mine, lambda t: t.client.cpu_per_gib),
            _median(mine, lambda t: t.client.busiest_per_gib), _median(mine, lambda t: t.seedbox.cpu_per_gib),
            statistics.median(_ratios(mine, lambda t: t.client.rate)), statistics.median(cpu_ratios),
            statistics.median(_ratios(mine, lambda t: t.seedbox.cpu_per_gib)), (min(cpu_ratios), max(cpu_ratios))))
    return verdicts


HEAD = ("| candidate | client GiB/s | x baseline | client CPU-s/GiB | x baseline (range) | client busiest thread | "
        "seedbox CPU-s/GiB | x baseline |\n|---|---|---|---|---|---|---|---|")


def line(v: Verdict) -> str:
    low, high = v.spread
    return (f"| {v.candidate.name} | {v.rate:.2f} | {v.rate_ratio:.2f} | {v.client_cpu:.2f} | "
            f"{v.client_cpu_ratio:.2f} ({low:.2f}-{high:.2f}) | {v.client_busiest:.2f} | {v.seedbox_cpu:.2f} | "
            f"{v.seedbox_cpu_ratio:.2f} |")


def report(verdicts: list[Verdict], size: int, rounds: int, seconds: float) -> str:
    return "\n".join([
        "# libtorrent settings for fast links, side by side",
        "",
        f"`python -m tools.bench.tune --size {size / GIB:g}GiB --rounds {rounds}` "
        f"({time.strftime('%Y-%m-%d')}; one client fetching from the seedbox over loopback, no caps; "
        f"the run took {seconds:.0f} s). Figures are medians over the rounds; \"x baseline\" is the median of "
        "the ratios to the baseline fetch (the settings modeltorrent ships) run beside each (below 1 is less CPU).",
        "",
        HEAD, *(line(v) for v in verdicts), "",
        "Settings:", "", *(f"- {v.candidate.name}: {v.candidate.describe()}" for v in verdicts), "",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="2GiB", help="model size (default: 2GiB)")
    parser.add_argument("--piece-size", default="64MiB", help="piece size (default: 64MiB)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="fetches per candidate, each beside a baseline fetch (default: 3)")
    parser.add_argument("--only", default="", help="comma-separated candidate names (default: all; the "
                        "baseline always runs); known: " + ", ".join(c.name for c in CANDIDATES))
    parser.add_argument("--report", type=Path, default=Path("results/tune/report.md"),
                        help="where the Markdown report goes (default: results/tune/report.md)")
    args = parser.parse_args()
    try:
        size, piece_size = parse_size(args.size), parse_size(args.piece_size)
    except ValueError as exc:
        parser.error(str(exc))
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    names = {c.name: c for c in CANDIDATES}
    wanted = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in names]
    if unknown:
        parser.error(f"unknown candidates {unknown}; known: {', '.join(names)}")
    candidates = [BASELINE, *(names[n] for n in wanted if n != BASELINE.name)] if wanted else CANDIDATES
    work = Path(tempfile.mkdtemp(prefix="modeltorrent-bench-tune-"))
    if shutil.disk_usage(work).free < 4 * size:
        parser.error(f"{work} needs about {4 * size / GIB:.1f} GiB free")
    started = time.monotonic()
    bench = Bench(work, size, piece_size)
    bench.seed_port = free_port()
    trials: list[Trial] = []
    try:
        bench.publish()
        tuner = Tuner(bench)
        for r in range(args.rounds):
            for k, c in enumerate(rotated(candidates[1:], r)):
                pair = tuner.pair(c, r, baseline_first=(r + k) % 2 == 0)
                trials += pair
                for t in pair:
                    print(f"round {r + 1}/{args.rounds} {t.candidate}: {t.client.rate:.2f} GiB/s, client "
                          f"{t.client.cpu_per_gib:.2f} CPU-s/GiB, seedbox {t.seedbox.cpu_per_gib:.2f}", flush=True)
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)
    verdicts = judge(candidates, trials)
    text = report(verdicts, bench.size, args.rounds, time.monotonic() - started)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(text)
    print(text)
    print(f"report: {args.report}")


if __name__ == "__main__":
    main()
