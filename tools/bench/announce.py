"""Announce throughput and latency of the tracker, side by side with opentracker in one run.

    python -m tools.bench.announce [--workers 1,2] [--db URL] [--seconds 15] [--connections 64] [--rate 3000]

Sets up 100 registered torrents and 10,000 registered hosts (100 per swarm), then drives
``/announce`` with wrk (Debian package) over a fixed list of 10,000 realistic announce URLs, for
the tracker with each worker count and for opentracker (Debian package, its whitelist holding the
same info hashes). For each server, three phases:

- joins: every host announces once, in order (a fleet joining the swarms);
- saturated: re-announces as fast as ``--connections`` connections go: the most it can answer,
  with the latency of a full queue (by Little's law about connections / rate);
- paced: re-announces offered at ``--rate`` per second (each connection waits its share between
  requests), the latency a fleet sees at that load.

Prints announces/s, p50 and p99 latency and the ratios to opentracker. wrk shares the machine's
cores with the server it measures: the printed core count says how many there were, and the
saturated run also prints the CPU the server itself used (its processes' user + system time over
the run, in cores) and its announces per second per core of that.
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

import httpx
from sqlmodel import Session

from tools.demo.procs import CLI, Procs, free_port, wait_http

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


def lua_script(pairs: list[tuple[str, bytes]], path: Path, *, sequential: bool = False) -> None:
    """wrk script over one announce URL per host: in order from $WRK_START (``sequential``: every
    host joins once) or in a fixed scattered order (re-announces of a settled fleet)."""
    lines = []
    for i, (key, info_hash) in enumerate(pairs):
        peer_id = b"-MT0100-" + i.to_bytes(12, "big")
        q = (f"/announce?passkey={key}&info_hash={quote_from_bytes(info_hash)}&peer_id={quote_from_bytes(peer_id)}"
             f"&port={10000 + i % 50000}&uploaded=0&downloaded=0&left=1000000&compact=1&numwant=50")
        lines.append(f'  "{q}",')
    pick = "(n - 1) % #paths + 1" if sequential else "(n * 7919) % #paths + 1"
    path.write_text("paths = {\n" + "\n".join(lines) + "\n}\nlocal n = tonumber(os.getenv('WRK_START') or '0')\n"
                    "local pause = tonumber(os.getenv('WRK_DELAY_MS') or '0')\n"
                    "request = function()\n  n = n + 1\n"
                    f"  return wrk.format(nil, paths[{pick}])\nend\n"
                    "if pause > 0 then delay = function() return pause end end\n")


def run_wrk(url: str, script: Path, seconds: int, connections: int, start: int = 0,
            rate: float = 0.0) -> dict[str, float]:
    """One wrk run; ``rate`` > 0 paces the requests to about that many per second in all."""
    env = {**os.environ, "WRK_START": str(start), "WRK_DELAY_MS": str(round(connections * 1000 / rate) if rate else 0)}
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True, env=env).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise RuntimeError(f"wrk printed no {label}% latency:\n{out}")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "requests": total,
            "non2xx": float(errors.group(1)) if errors else 0.0}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and all its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def join_all(url: str, script: Path, connections: int) -> float:
    """Every host announces once, in order (a fleet joining); returns the joins per second."""
    start, seconds = 0, 0.0
    while start < HOSTS:
        r = run_wrk(url, script, 5, connections, start)
        start += int(r["requests"])
        seconds += r["requests"] / r["rps"]
    return start / seconds


def measure(url: str, work: Path, args: argparse.Namespace, pid: int) -> dict[str, dict[str, float]]:
    joins = join_all(url, work / "join.lua", args.connections)
    cpu, wall = cpu_seconds(pid), time.monotonic()
    saturated = run_wrk(url, work / "announce.lua", args.seconds, args.connections)
    # wrk shares the cores: the server's own CPU time says how many cores its rate took.
    cores = (cpu_seconds(pid) - cpu) / (time.monotonic() - wall)
    saturated |= {"cores": cores, "per_core": saturated["rps"] / cores if cores else 0.0}
    paced = run_wrk(url, work / "announce.lua", args.seconds, args.connections, rate=args.rate)
    return {"saturated": saturated | {"joins": joins}, "paced": paced}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to measure")
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--seconds", type=int, default=15, help="length of each measured run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=3000, help="announces/s offered in the paced run")
    args = parser.parse_args()
    for tool in ("wrk", "opentracker"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed: apt-get install {tool}")
    work = Path(tempfile.mkdtemp(prefix="modeltorrent-bench-"))
    procs = Procs(work / "logs")
    results: list[tuple[str, dict[str, dict[str, float]], float]] = []
    try:
        db = args.db or f"sqlite:///{work / 'tracker.db'}"
        pairs = setup_db(db)
        lua_script(pairs, work / "announce.lua")
        lua_script(pairs, work / "join.lua", sequential=True)
        for workers in [int(w) for w in args.workers.split(",")]:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            proc = procs.start(f"tracker-{workers}", [*CLI, "tracker", "serve", "--port", str(port), "--db", db,
                                                      "--workers", str(workers), "--interval", "1800"],
                               env={"MODELTORRENT_ADMIN_TOKEN": TOKEN})
            wait_http(f"{url}/healthz", proc=proc)
            figures = measure(url, work, args, proc.pid)
            results.append((f"modeltorrent, {workers} worker{'s' if workers > 1 else ''}", figures, refused(url)))
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
        results.append(("opentracker", measure(f"http://127.0.0.1:{port}", work, args, proc.pid), 0.0))
    finally:
        procs.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    report(results, args)


def report(results: list[tuple[str, dict[str, dict[str, float]], float]], args: argparse.Namespace) -> None:
    ref = results[-1][1]
    print(f"\nannounce benchmark: {SWARMS} swarms, {HOSTS} hosts, wrk -c{args.connections}, {args.seconds} s per run, "
          f"{os.cpu_count()} cores shared by wrk and the server, db {args.db or 'sqlite'}")
    print(f"{'server':<26}{'joins/s':>8}  {'saturated: /s':>14}{'p50 ms':>8}{'p99 ms':>8}{'cores':>7}{'/s/core':>9}"
          f"  {f'paced at {args.rate:.0f}/s: /s':>22}{'p50 ms':>8}{'p99 ms':>8}{'refused':>9}")
    for name, r, bad in results:
        sat, paced = r["saturated"], r["paced"]
        bad += sat["non2xx"] + paced["non2xx"]
        print(f"{name:<26}{sat['joins']:>8.0f}  {sat['rps']:>14.0f}{sat['p50']:>8.2f}{sat['p99']:>8.2f}"
              f"{sat['cores']:>7.2f}{sat['per_core']:>9.0f}"
              f"  {paced['rps']:>22.0f}{paced['p50']:>8.2f}{paced['p99']:>8.2f}{bad:>9.0f}")
    print("ratios to opentracker (rate: higher is better; p99: lower is better)")
    for name, r, _ in results[:-1]:
        sat, paced = r["saturated"], r["paced"]
        print(f"{name:<26}saturated rate {sat['rps'] / ref['saturated']['rps']:.3f}, "
              f"p99 {sat['p99'] / ref['saturated']['p99']:.1f}x; "
              f"paced rate {paced['rps'] / ref['paced']['rps']:.3f}, p99 {paced['p99'] / ref['paced']['p99']:.1f}x")


def refused(url: str) -> float:
    """Announces the tracker refused or failed, from its own metrics: a fast wrong answer is no answer."""
    text = httpx.get(f"{url}/metrics", timeout=30).text
    found = re.findall(r'^modeltorrent_announces_total{result="(?:refused|error)"} ([\d.e+]+)$', text, re.M)
    return sum(float(v) for v in found)


if __name__ == "__main__":
    main()
