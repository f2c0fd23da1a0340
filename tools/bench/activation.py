"""Last piece to active model: how long a host takes from its last verified piece to the swap of
``current``, for models of growing size, side by side in one run.

    python -m tools.bench.activation [--sizes 64MiB,512MiB,2GiB] [--piece-size 16MiB] [--repeat 3]

For each size: a generated model is published to a tracker on loopback, a seedbox serves it from
a local path and one client fetches it (real processes, the CLI's ``--json`` result). Pieces are
verified as they complete, so the time from the last piece to activation should not grow with the
model; the ratio of the largest to the smallest size says whether it does. The download time is
printed too (it does grow: it is the network and the disk).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import signing
from common.units import format_size, parse_size
from tools.cli.publish import publish
from tools.demo.modelgen import generate_model
from tools.demo.procs import CLI, REPO, Procs, start_tracker
from tracker.api_client import TrackerClient


def measure(work: Path, size: int, piece_size: int, repeat: int) -> dict[str, float]:
    procs = Procs(work / "logs")
    token = secrets.token_hex(16)
    try:
        model = work / "model"
        generate_model(model, size)
        key = work / "publisher.key"
        public = signing.generate_key(key)
        tracker = start_tracker(procs, work / "tracker.db", token, interval=5)
        publish(model, name="m", version="1", key_path=key, source=str(model), piece_size=piece_size,
                tracker=tracker, admin_token=token, out_dir=work / "out")
        with TrackerClient(tracker, admin_token=token) as admin:
            seed_key = admin.add_host("seedbox", "dc1|pod1|seed", "seedbox")["passkey"]
            keys = [admin.add_host(f"h{i}", "dc1|pod1|r1")["passkey"] for i in range(repeat)]
        procs.start("seedbox", [*CLI, "seedbox", "run", "m@1", "--tracker", tracker, "--passkey", seed_key,
                                "--workdir", str(work / "seedbox"), "--listen", "127.0.0.1:0", "--trust-key", public])
        status = work / "seedbox" / "status" / "m@1.json"
        deadline = time.monotonic() + 600
        while not (status.exists() and json.loads(status.read_text()).get("state") == "seeding"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the seedbox did not finish: {procs.log('seedbox')[-2000:]}")
            time.sleep(0.2)
        to_active, download = [], []
        for i, passkey in enumerate(keys):  # one host after another: each has the seedbox to itself
            root = work / f"h{i}"
            done = subprocess.run([*CLI, "client", "fetch", "m@1", "--tracker", tracker, "--passkey", passkey,
                                   "--root", str(root), "--listen", "127.0.0.1:0", "--trust-key", public, "--json"],
                                  capture_output=True, text=True, cwd=REPO, timeout=1800,
                                  env=os.environ | {"PYTHONPATH": str(REPO), "MODELTORRENT_LOG": "INFO"})
            if done.returncode != 0:
                raise RuntimeError(f"client fetch failed: {done.stderr[-2000:]}")
            result = json.loads(done.stdout.splitlines()[-1])
            steps = [line for line in done.stderr.splitlines() if "activated m@1 (" in line]
            print(f"{format_size(size)} host {i}: {steps[-1].split('activated ')[-1] if steps else ''}", flush=True)
            to_active.append(result["last_piece_to_active"])
            download.append(result["download_seconds"])
            shutil.rmtree(root)  # disk for the next host
        return {"to_active": statistics.median(to_active), "worst": max(to_active),
                "download": statistics.median(download)}
    finally:
        procs.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64MiB,512MiB,2GiB", help="comma-separated model sizes")
    parser.add_argument("--piece-size", default="16MiB")
    parser.add_argument("--repeat", type=int, default=3, help="hosts fetching each size (the median is printed)")
    args = parser.parse_args()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    rows = []
    for size in sizes:
        work = Path(tempfile.mkdtemp(prefix="modeltorrent-bench-activation-"))
        try:
            rows.append((size, measure(work, size, parse_size(args.piece_size), args.repeat)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nlast piece to active: one client on loopback, piece size {args.piece_size}, "
          f"median of {args.repeat} hosts, {os.cpu_count()} cores")
    print(f"{'model':>10}{'download s':>12}{'last piece -> active ms':>26}{'worst ms':>10}")
    for size, r in rows:
        print(f"{format_size(size):>10}{r['download']:>12.2f}{r['to_active'] * 1000:>26.1f}{r['worst'] * 1000:>10.1f}")
    small, large = rows[0], rows[-1]
    print(f"ratio {format_size(large[0])} / {format_size(small[0])}: size x{large[0] / small[0]:.0f}, "
          f"download x{large[1]['download'] / small[1]['download']:.1f}, "
          f"last piece -> active x{large[1]['to_active'] / small[1]['to_active']:.2f}")


if __name__ == "__main__":
    main()
