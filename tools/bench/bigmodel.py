"""Big models on one machine: what grows with the model, measured at two sizes and projected.

    python -m tools.bench.bigmodel [--sizes 4GiB,32GiB] [--piece-size 64MiB] [--report docs/bigmodel-report.md]

For each size: the demo origin generates the model as it is read (``tools/demo/generated.py``: no
copy at the source, so only the seedbox's and one host's copies land on disk), it is published
(hashed from the generator, signed, registered), a seedbox ingests it from the origin over HTTP,
one client fetches it, is killed -9 half way, and is started again. Measured: that the restarted
client downloads only what it had not verified, its last-piece-to-active time, the largest
state it wrote (its verified pieces; libtorrent's resume data, which for v2 carries every block's
hash, is not kept), the peak RSS of the seedbox and of each client run, and that the active
model is byte-identical (every piece checked against the signed manifest). Then each figure is
projected to 500 GB from its growth between the two sizes. Everything on loopback, no caps.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from common import signing, torrent
from common.hashing import PieceDigest, digest_piece
from common.layout import plan
from common.manifest import Manifest
from common.units import parse_size
from tools.bench.cpu import Sampler, wait_exited
from tools.demo.generated import GeneratedModel
from tools.demo.procs import CLI, Procs, free_port, start_origin, start_tracker
from tracker.api_client import TrackerClient

GIB = 1 << 30
TARGET = 500 * 10**9  # the mission's model: 500 GB


@dataclass
class Run:
    size: int
    pieces: int
    publish_seconds: float
    ingest_seconds: float
    seedbox_peak_rss: int
    seedbox_peak_anon: int  # of which its own memory (RssAnon), not mapped file pages
    pieces_at_kill: int  # verified pieces in the client's state when it was killed
    verified_at_restart: int  # what the restarted client found it did not need again
    downloaded_after_restart: int  # bytes
    missing_at_restart: int  # bytes the model lacked when the client restarted
    first_run_peak_rss: int
    second_run_peak_rss: int
    first_run_peak_anon: int
    second_run_peak_anon: int
    state_bytes: int  # the largest state file the client wrote (its verified pieces)
    last_piece_to_active: float  # seconds
    fetch_seconds: float  # the restarted client's download
    identical: bool


class Watcher:
    """The largest size a file reached, polled in a thread."""

    def __init__(self, path: Path, period: float = 0.2) -> None:
        self.path, self.period, self.largest = path, period, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            with contextlib.suppress(FileNotFoundError):
                self.largest = max(self.largest, self.path.stat().st_size)

    def close(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.largest


def publish_generated(model: GeneratedModel, piece_size: int, key: Path, origin: str, tracker: str,
                      token: str) -> Manifest:
    """Hash the generated model in this process (hashlib releases the GIL: one thread a core) and
    register it, as ``modeltorrent publish`` would a folder."""
    layout = plan(sorted(model.files.items()), piece_size)

    def one(index: int) -> PieceDigest:
        span = layout.pieces[index]
        return digest_piece(model.read(layout.files[span.file_index].path, span.file_offset, span.length),
                            span, layout)

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        digests = list(pool.map(one, range(layout.num_pieces)))
    manifest = Manifest.create(name="big", version="1", layout=layout, digests=digests,
                               key=signing.load_private_key(key), source=origin)
    built = torrent.build(layout, digests, "big", version=manifest.version,
                          comment=f"modeltorrent {manifest.ref} root={manifest.root}")
    with TrackerClient(tracker, admin_token=token) as admin:
        admin.register(manifest, built)
    return manifest


def run_size(work: Path, size: int, piece_size: int, kill_at: float, client_rate: str = "") -> Run:
    procs = Procs(work / "logs")
    sampler = Sampler()
    token = secrets.token_hex(16)
    env = {"MODELTORRENT_ADMIN_TOKEN": token}
    try:
        key = work / "publisher.key"
        public = signing.generate_key(key)
        tracker = start_tracker(procs, work / "tracker.db", token, interval=5)
        model = GeneratedModel(size)
        origin = start_origin(procs, None, generate=str(size))
        with TrackerClient(tracker, admin_token=token) as admin:
            seed_key = admin.add_host("seedbox", "dc1|pod1|seed", "seedbox")["passkey"]
            host_key = admin.add_host("h1", "dc1|pod1|r1")["passkey"]
        started = time.monotonic()
        manifest = publish_generated(model, piece_size, key, origin, tracker, token)
        publish_seconds = time.monotonic() - started
        pieces = len(manifest.pieces)
        print(f"  published {size / GIB:.0f} GiB, {pieces} pieces, in {publish_seconds:.0f} s", flush=True)

        started = time.monotonic()
        seedbox = procs.start("seedbox", [*CLI, "seedbox", "run", "big@1", "--tracker", tracker, "--passkey", seed_key,
                                          "--workdir", str(work / "seedbox"), "--trust-key", public,
                                          "--listen", f"127.0.0.1:{free_port()}"], env=env)
        sampler.watch(seedbox.pid)
        root = work / "h1"
        argv = [*CLI, "client", "fetch", "big@1", "--tracker", tracker, "--passkey", host_key, "--root", str(root),
                "--listen", "127.0.0.1:0", "--trust-key", public, "--json"]
        sidecar = root / "big" / "state" / "1.verified.json"
        state = Watcher(sidecar)

        capped = [*argv, "--download-rate", client_rate] if client_rate else argv  # the kill lands mid-way
        first = procs.start("client-1", capped, env=env)
        sampler.watch(first.pid)
        held = 0
        while held < kill_at * pieces:
            if first.poll() is not None:
                raise RuntimeError(f"the client ended before the kill: {procs.log('client-1')[-2000:]}")
            time.sleep(0.2)
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
                held = len(json.loads(sidecar.read_text())["pieces"])
        first_anon = sampler.usage(first.pid).peak_anon
        first.send_signal(signal.SIGKILL)
        _, _, first_rss = wait_exited(first.pid, 60)
        kept = set(json.loads(sidecar.read_text())["pieces"])
        held = len(kept)
        layout = manifest.layout()
        missing = sum(span.length for i, span in enumerate(layout.pieces) if i not in kept)
        print(f"  client killed -9 holding {held}/{pieces} verified pieces", flush=True)

        out = work / "client-2.out"
        second = procs.start("client-2", ["sh", "-c", 'exec "$@" > "$0"', str(out), *argv], env=env)
        sampler.watch(second.pid)
        code, _, second_rss = wait_exited(second.pid, 6 * 3600, lambda: sampler.usage(second.pid))
        anon = sampler.usage(second.pid).peak_anon  # kept from its last look
        if code != 0:
            raise RuntimeError(f"the restarted client exited {code}: {procs.log('client-2')[-2000:]}")
        result = json.loads(out.read_text().strip().splitlines()[-1])
        status = work / "seedbox" / "status" / "big@1.json"
        while json.loads(status.read_text())["state"] != "seeding":
            time.sleep(0.2)
        ingest_seconds = time.monotonic() - started  # an upper bound: the seedbox finished by now
        seedbox_rss, seedbox_anon = sampler.usage(seedbox.pid).peak_rss, sampler.usage(seedbox.pid).peak_anon
        procs.stop("seedbox")
        state_bytes = state.close()
        try:
            manifest.verify_data(root / "big" / "current")
            identical = True
        except Exception as exc:  # noqa: BLE001 (the report says it; the run goes on)
            print(f"  NOT IDENTICAL: {exc}", flush=True)
            identical = False
        return Run(size=manifest.total_size, pieces=pieces, publish_seconds=publish_seconds,
                   ingest_seconds=ingest_seconds, seedbox_peak_rss=seedbox_rss, seedbox_peak_anon=seedbox_anon,
                   pieces_at_kill=held, first_run_peak_anon=first_anon, second_run_peak_anon=anon,
                   verified_at_restart=result["pieces_verified_at_start"],
                   downloaded_after_restart=result["bytes_downloaded"], missing_at_restart=missing,
                   first_run_peak_rss=first_rss, second_run_peak_rss=second_rss, state_bytes=state_bytes,
                   last_piece_to_active=result["last_piece_to_active"], fetch_seconds=result["elapsed"],
                   identical=identical)
    finally:
        procs.stop_all()
        sampler.close()


def projected(small: float, big: float, small_size: int, big_size: int) -> float:
    """A figure at 500 GB, on the straight line through its two measurements (one that does not
    grow stays where it is: a smaller figure at the larger size is noise, not a trend)."""
    slope = max((big - small) / (big_size - small_size), 0.0)
    return big + slope * (TARGET - big_size)


MIB = 1 << 20
FIGURES = [  # (what, field, unit divisor, unit)
    ("seedbox peak RSS", "seedbox_peak_rss", MIB, "MiB"),
    ("of which its own memory (anonymous)", "seedbox_peak_anon", MIB, "MiB"),
    ("client peak RSS (first run, killed)", "first_run_peak_rss", MIB, "MiB"),
    ("of which its own memory (anonymous)", "first_run_peak_anon", MIB, "MiB"),
    ("client peak RSS (restarted run)", "second_run_peak_rss", MIB, "MiB"),
    ("of which its own memory (anonymous)", "second_run_peak_anon", MIB, "MiB"),
    ("largest client state (verified pieces)", "state_bytes", 1024, "KiB"),
    ("last piece to active", "last_piece_to_active", 1, "s"),
]


def report(runs: list[Run], piece_size: int, seconds: float) -> str:
    small, big = runs[0], runs[-1]
    sizes = " | ".join(f"{r.size / GIB:.0f} GiB ({r.pieces} pieces)" for r in runs)
    lines = [
        "# Big models: what grows with the model",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on this machine (2 cores, loopback, no caps), pieces of "
        f"{piece_size // MIB} MiB, v2, in {seconds / 60:.0f} min:",
        "",
        "    python -m tools.bench.bigmodel --sizes " + ",".join(f"{r.size // GIB}GiB" for r in runs),
        "",
        "The origin generates the model as it is read; the seedbox ingests it over HTTP; one client",
        "fetches it, is killed -9 half way and started again.",
        "",
        f"| figure | {sizes} | projected to 500 GB | per piece at the largest size |",
        "|---|" + "---|" * len(runs) + "---|---|",
    ]
    for what, field, div, unit in FIGURES:
        values = [getattr(r, field) / div for r in runs]
        at_target = projected(values[0], values[-1], small.size, big.size)
        per_piece = values[-1] / big.pieces
        lines.append(f"| {what} ({unit}) | " + " | ".join(f"{v:.2f}" for v in values)
                     + f" | {at_target:.1f} | {per_piece:.4f} |")
    lines += ["", "| run | " + sizes + " |", "|---|" + "---|" * len(runs)]
    rows = [
        ("publish (hash from the generator), s", lambda r: f"{r.publish_seconds:.0f}"),
        ("seedbox ingest until seeding (upper bound), s", lambda r: f"{r.ingest_seconds:.0f}"),
        ("verified pieces at the kill", lambda r: f"{r.pieces_at_kill}/{r.pieces}"),
        ("verified pieces found at restart", lambda r: f"{r.verified_at_restart}"),
        ("downloaded after restart / missing at restart", lambda r:
         f"{r.downloaded_after_restart / MIB:.0f} / {r.missing_at_restart / MIB:.0f} MiB "
         f"({r.downloaded_after_restart / max(r.missing_at_restart, 1):.3f}x)"),
        ("restarted client's download, s", lambda r: f"{r.fetch_seconds:.0f}"),
        ("active model byte-identical (every piece against the signed manifest)",
         lambda r: "yes" if r.identical else "NO"),
    ]
    for what, cell in rows:
        lines.append(f"| {what} | " + " | ".join(cell(r) for r in runs) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="4GiB,32GiB", help="model sizes, smallest first (default: 4GiB,32GiB)")
    parser.add_argument("--piece-size", default="64MiB", help="piece size (default: 64MiB)")
    parser.add_argument("--kill-at", type=float, default=0.5, help="kill the client holding this share of the "
                        "pieces (default: 0.5)")
    parser.add_argument("--client-rate", default="", help="cap the first client run's download (e.g. 8MiB), so "
                        "that a small model is still downloading when it is killed (default: no cap)")
    parser.add_argument("--report", type=Path, default=Path("results/bigmodel/report.md"),
                        help="write the Markdown report here (default: results/bigmodel/report.md)")
    parser.add_argument("--json", type=Path, help="also write the runs as JSON here")
    parser.add_argument("--workdir", type=Path, help="work here and keep it (default: a temporary folder, removed)")
    args = parser.parse_args()
    try:
        sizes = [parse_size(s) for s in args.sizes.split(",")]
        piece_size = parse_size(args.piece_size)
    except ValueError as exc:
        parser.error(str(exc))
    if len(sizes) < 2 or sizes != sorted(sizes) or len(set(sizes)) != len(sizes):
        parser.error("--sizes needs two or more different sizes, smallest first")
    if not 0 < args.kill_at < 1:
        parser.error("--kill-at must be between 0 and 1")
    base = args.workdir or Path(tempfile.mkdtemp(prefix="modeltorrent-bigmodel-"))
    started = time.monotonic()
    runs = []
    try:
        for size in sizes:
            print(f"{size / GIB:g} GiB:", flush=True)
            work = base / f"{size}"
            work.mkdir(parents=True, exist_ok=True)
            runs.append(run_size(work, size, piece_size, args.kill_at, args.client_rate))
            print("  " + json.dumps(asdict(runs[-1])), flush=True)
            if not args.workdir:
                shutil.rmtree(work)  # disk for the next size
    finally:
        if not args.workdir:
            shutil.rmtree(base, ignore_errors=True)
    text = report(runs, piece_size, time.monotonic() - started)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(text)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in runs], indent=1))
    print(text)


if __name__ == "__main__":
    main()
