"""Announce throughput and latency of the tracker, side by side with opentracker in one run.

    python -m tools.bench_announce [--workers 1,2] [--db URL] [--seconds 15] [--connections 64]

Sets up 100 registered torrents and 10,000 registered hosts (100 per swarm), then drives
``/announce`` with wrk (Debian package) over a fixed list of 10,000 realistic announce URLs, for
the tracker with each worker count and for opentracker (Debian package, its whitelist holding the
same info hashes). Prints announces/s, p50 and p99 latency, and each figure as a ratio to
opentracker's. wrk shares the machine's cores with the server it measures: the printed core count
says how many there were.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote_from_bytes

from sqlmodel import Session

from tools.procs import CLI, Procs, free_port, wait_http

SWARMS, HOSTS = 100, 10_000
TOKEN = "bench-admin-token"


def setup_db(url: str) -> list[tuple[str, bytes]]:
    """Register torrents and hosts straight into the database; returns (passkey, info_hash) pairs."""
    from tracker.db import make_engine
    from tracker.models import Host, Release

    engine = make_engine(url)
    hashes = [secrets.token_bytes(20) for _ in range(SWARMS)]
    with Session(engine) as session:
        for i, h in enumerate(hashes):
            session.add(Release(name=f"bench{i}", version="1", root="0" * 64, total_size=10**12, num_pieces=1,
                                info_hash_v1=h.hex(), info_hash_v2=secrets.token_hex(20), manifest="{}",
                                torrent=b"x"))
        keys = [secrets.token_hex(16) for _ in range(HOSTS)]
        for i, key in enumerate(keys):
            session.add(Host(name=f"h{i:05d}", location=f"dc1|pod{i % 10}|rack{i % 100}", passkey=key))
        session.commit()
    engine.dispose()
    return [(keys[i], hashes[i % SWARMS]) for i in range(HOSTS)]


def lua_script(pairs: list[tuple[str, bytes]], path: Path) -> None:
    lines = []
    for i, (key, info_hash) in enumerate(pairs):
        peer_id = b"-MT0100-" + i.to_bytes(12, "big")
        q = (f"/announce?passkey={key}&info_hash={quote_from_bytes(info_hash)}&peer_id={quote_from_bytes(peer_id)}"
             f"&port={10000 + i % 50000}&uploaded=0&downloaded=0&left=1000000&compact=1&numwant=50")
        lines.append(f'  "{q}",')
    path.write_text("paths = {\n" + "\n".join(lines) + "\n}\nlocal n = 0\n"
                    "request = function()\n  n = n + 1\n"
                    "  return wrk.format(nil, paths[(n * 7919) % #paths + 1])\nend\n")


def run_wrk(url: str, script: Path, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise RuntimeError(f"wrk printed no {label}% latency:\n{out}")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "non2xx": float(errors.group(1)) if errors else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to measure")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    for tool in ("wrk", "opentracker"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed: apt-get install {tool}")
    work = Path(tempfile.mkdtemp(prefix="modeltorrent-bench-"))
    procs = Procs(work / "logs")
    results: list[tuple[str, dict[str, float]]] = []
    try:
        db = args.db or f"sqlite:///{work / 'tracker.db'}"
        pairs = setup_db(db)
        script = work / "announce.lua"
        lua_script(pairs, script)
        for workers in [int(w) for w in args.workers.split(",")]:
            port = free_port()
            proc = procs.start(f"tracker-{workers}", [*CLI, "tracker", "serve", "--port", str(port), "--db", db,
                                                      "--workers", str(workers), "--interval", "1800"],
                               env={"MODELTORRENT_ADMIN_TOKEN": TOKEN})
            wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
            run_wrk(f"http://127.0.0.1:{port}", script, 3, args.connections)  # warm up: every peer joins
            results.append((f"modeltorrent, {workers} worker{'s' if workers > 1 else ''}",
                            run_wrk(f"http://127.0.0.1:{port}", script, args.seconds, args.connections)))
            procs.stop(f"tracker-{workers}")
        whitelist = work / "whitelist.txt"
        whitelist.write_text("".join(h.hex() + "\n" for h in {h for _, h in pairs}))
        port = free_port()
        os.chmod(work, 0o755)  # opentracker drops to "nobody" and chroots into its -d folder
        os.chmod(whitelist, 0o644)
        proc = procs.start("opentracker", ["opentracker", "-i", "127.0.0.1", "-p", str(port), "-P", str(port),
                                           "-d", str(work), "-w", whitelist.name])
        time.sleep(1)
        if proc.poll() is not None:
            raise RuntimeError(f"opentracker exited: {procs.log('opentracker')}")
        run_wrk(f"http://127.0.0.1:{port}", script, 3, args.connections)
        results.append(("opentracker", run_wrk(f"http://127.0.0.1:{port}", script, args.seconds, args.connections)))
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    ref = results[-1][1]
    print(f"\nannounce benchmark: {SWARMS} swarms, {HOSTS} hosts, wrk -c{args.connections} for {args.seconds}s, "
          f"{os.cpu_count()} cores shared by wrk and the server, db {args.db or 'sqlite'}")
    print(f"{'server':<28}{'announces/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
          f"{'rate/opentracker':>18}{'p99/opentracker':>17}")
    for name, r in results:
        print(f"{name:<28}{r['rps']:>12.0f}{r['p50']:>9.2f}{r['p99']:>9.2f}{r['non2xx']:>9.0f}"
              f"{r['rps'] / ref['rps']:>18.3f}{r['p99'] / ref['p99']:>17.1f}")


if __name__ == "__main__":
    main()
