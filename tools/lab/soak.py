"""Soak: the emulated datacenter's fault matrix, round after round, with randomised timing.

    python -m tools.lab.soak [--rounds 20] [--seed 1] [--size 48MiB] [--report results/soak/report.md]

Each round builds a fresh lab (``tools/lab``: 2 racks x 3 hosts, NIC 200, uplink 100, ingress 50
Mbit/s; needs root), publishes a model and distributes it while every fault of the matrix strikes
at a random moment: a client killed -9 and restarted, the seedbox killed -9 and restarted, the
tracker killed -9 and restarted, a rack cut off and healed, a registered host serving corrupt
blocks, external storage failing every few reads with a 5xx and once serving a wrong byte, and a
host whose disk is too small for the model. Then it counts what must stay zero:

- bytes read from external storage beyond the model and the re-reads of the piece it served wrong
  (more than one piece's worth: what sat in the seedbox's sockets when it was killed);
- verified pieces downloaded again (a killed client's saved pieces that its next run did not take
  as verified at start);
- corrupt activations (a host's active model that does not hash to the signed manifest);
- hosts that did not finish (the full-disk host aside: it must fail before writing anything and
  activate nothing);
- honest hosts banned (any host but the corrupt one, its address blocked by any host). Beside it,
  not a loss: honest hosts struck once (libtorrent's sole-sender rule blamed them for a piece that
  failed and the connection was dropped, but the address was not blocked: common/lt_session.py,
  STRIKES).

Prints a line per round and the table; every non-zero in a loss column is a bug, not a figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.store import ModelStore
from common.manifest import Manifest
from common.units import parse_size
from tools.lab.faults import EvilPeer, KillClients, KillSeedbox, Partition, RestartTracker
from tools.lab.lab import PIECE, Lab
from tools.lab.topology import Topology

TOPOLOGY = Topology(racks=2, hosts_per_rack=3, nic_mbit=200, uplink_mbit=100, ingress_mbit=50)
KINDS = ("client killed", "seedbox killed", "tracker restarted", "rack partitioned", "corrupt peer",
         "source 5xx", "source wrong bytes", "full disk")
_ACTIVATED = re.compile(r"activated m@1 .*; (\d+) of (\d+) pieces were verified at the start of this run")
_BANNED = re.compile(r"peer (\S+) sent data that failed")
_STRUCK = re.compile(r"peer (\S+) was found the sole sender")


@dataclass
class Round:
    number: int
    seconds: float = 0.0
    faults: dict[str, int] = field(default_factory=dict)
    source_over_size: float = 0.0
    source_extra: int = 0  # bytes read beyond the model and the re-read wrong pieces
    verified_again: int = 0  # bytes
    corrupt: int = 0
    unfinished: list[str] = field(default_factory=list)
    honest_banned: list[str] = field(default_factory=list)
    honest_struck: list[str] = field(default_factory=list)  # not a loss: dropped once, not blocked
    notes: list[str] = field(default_factory=list)

    @property
    def losses(self) -> bool:
        return bool(self.source_extra > PIECE or self.verified_again or self.corrupt or self.unfinished
                    or self.honest_banned)


def _full_disk(root: Path, size: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={max(size // 4, 1 << 20)}", "tmpfs", str(root)], check=True)


def one_round(number: int, rng: random.Random, size: int, workdir: Path) -> Round:
    out = Round(number)
    # INFO: a client's activation line says how many pieces it took as verified at its start; the
    # peer alerts say what led to a ban.
    lab = Lab(TOPOLOGY, workdir, env={
        "MODELTORRENT_LOG": os.environ.get("MODELTORRENT_LOG", "INFO"),
        "MODELTORRENT_LT_DEBUG": os.environ.get("MODELTORRENT_LT_DEBUG", "1")})
    clients = [h.name for h in lab.clients]
    full = rng.choice(clients)
    killed = rng.choice([c for c in clients if c != full])
    rack = rng.choice(["rack1", "rack2"])
    faults: list[Any] = [
        KillClients([killed], size, fraction=rng.uniform(0.3, 0.7)),
        KillSeedbox(fraction=rng.uniform(0.2, 0.8)),
        RestartTracker(at=rng.uniform(1.0, 8.0)),
        Partition(rack, at=rng.uniform(1.0, 6.0), seconds=rng.uniform(2.0, 8.0)),
        EvilPeer(rng.choice(["rack1", "rack2"]), [sys.executable, "-m", "tests.evil_peer"]),
    ]
    # A 503 on one read in 5 to 9 (one in 4 with 4 lanes reading at once could land on one lane
    # every time: 4 failures in a row, which the seedbox gives up on).
    fail_every, flip = rng.randint(5, 9), rng.randrange(4 << 20)  # a byte of whichever file is read there first
    lab.origin_args = ["--fail-every", str(fail_every), "--flip-once", str(flip)]
    root = lab.workdir / "hosts" / full
    started = time.monotonic()
    try:
        with lab:
            _full_disk(root, size)
            lab.gone.add(full)  # it must fail, not finish: not waited for
            try:
                result = lab.distribute(size, faults=faults)
            finally:
                out.seconds = time.monotonic() - started
            kill, seedbox, tracker, cut, evil = faults
            out.faults = {"client killed": len(kill.killed), "seedbox killed": int(seedbox.killed_at is not None),
                          "tracker restarted": int(tracker.done_at is not None),
                          "rack partitioned": int(cut.healed_at is not None), "corrupt peer": int(bool(evil.ip)),
                          "full disk": 1}
            stats = lab.storage_stats()  # the origin's: it counts what it served wrong and refused
            out.faults["source 5xx"], out.faults["source wrong bytes"] = stats["failed"], stats["flipped"]
            out.source_over_size = round(result.source_bytes / result.size, 4)
            # A piece served wrong is read again: not a loss.
            out.source_extra = result.source_bytes - result.size - stats["flipped"] * PIECE
            out.notes.append(f"T/T_min {result.ratio:.2f}; read {out.source_extra:+d} bytes beyond the model and "
                             "the wrong piece's second read")
            for host in clients:
                store = ModelStore(lab.workdir / "hosts" / host)
                if host == full:
                    log = lab.procs.log(host)
                    if store.active_version("m") is not None or "not enough disk space" not in log:
                        out.unfinished.append(f"{full} (full disk: did not fail cleanly)")
                    continue
                if store.active_version("m") != "1":
                    out.unfinished.append(host)
                    continue
                raw = store.load_manifest("m", "1")
                try:
                    Manifest.from_json(raw or b"").verify_data(store.current("m"))
                except Exception as exc:  # noqa: BLE001 (any failure to verify is a corrupt activation)
                    out.corrupt += 1
                    out.notes.append(f"{host}: {exc}")
            for host, victim in kill.killed.items():
                runs = _ACTIVATED.findall(lab.procs.log(host))
                at_start = int(runs[-1][0]) if runs else 0
                lost = max(0, len(victim.verified_pieces) - at_start)
                out.verified_again += lost * PIECE
                out.notes.append(f"{host} killed at {victim.at:.1f} s with {len(victim.verified_pieces)} pieces saved, "
                                 f"restarted with {at_start} verified")
            name_of = {h.ip: h.name for h in lab.clients} | {lab.seedbox.ip: "seedbox", evil.ip: "evil"}
            for host in clients:
                for ip in _BANNED.findall(lab.procs.log(host)):
                    if name_of.get(ip, ip) != "evil":
                        out.honest_banned.append(f"{name_of.get(ip, ip)} by {host}")
                for ip in _STRUCK.findall(lab.procs.log(host)):
                    if name_of.get(ip, ip) != "evil":
                        out.honest_struck.append(f"{name_of.get(ip, ip)} by {host}")
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", str(root)], check=True, capture_output=True)
    return out


def table(rounds: list[Round]) -> list[str]:
    ratios = [r.source_over_size for r in rounds]
    lines = [
        "| rounds | faults injected | source / F per round (min, max) | bytes read beyond (max) | "
        "verified bytes downloaded again | corrupt activations | hosts that did not finish | honest hosts banned | "
        "honest hosts struck once (not blocked) |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {len(rounds)} | " + ", ".join(f"{k} {sum(r.faults.get(k, 0) for r in rounds)}" for k in KINDS)
        + f" | {min(ratios):.4f}, {max(ratios):.4f} | {max(r.source_extra for r in rounds):+d} | "
        f"{sum(r.verified_again for r in rounds)} | "
        f"{sum(r.corrupt for r in rounds)} | {sum(len(r.unfinished) for r in rounds)} | "
        f"{sum(len(r.honest_banned) for r in rounds)} | {sum(len(r.honest_struck) for r in rounds)} |",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20, help="rounds to run (default: 20)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the faults' timing (default: 1)")
    parser.add_argument("--size", default="48MiB", help="model size (default: 48MiB, about 8 s at the ingress)")
    parser.add_argument("--report", type=Path, default=Path("results/soak/report.md"),
                        help="where the Markdown table goes (default: results/soak/report.md)")
    parser.add_argument("--workdir", type=Path, help="keep each round's lab here (default: temporary, removed)")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        size = parse_size(args.size)
    except ValueError as exc:
        parser.error(str(exc))
    if args.workdir:  # each round's logs and hosts' folders stay there
        os.environ["MODELTORRENT_LAB_KEEP"] = "1"

    rounds: list[Round] = []
    started = time.monotonic()
    for number in range(1, args.rounds + 1):
        rng = random.Random(args.seed * 1000 + number)
        work = args.workdir / f"round-{number}" if args.workdir else Path(tempfile.mkdtemp(prefix="mt-soak-"))
        try:
            r = one_round(number, rng, size, work)
        except Exception as exc:  # noqa: BLE001 (a round that could not finish is a finding, not a crash)
            r = Round(number, unfinished=[f"round failed: {str(exc)[-300:]}"])
        finally:
            if not args.workdir:
                shutil.rmtree(work, ignore_errors=True)
            else:  # the logs stay; the model's copies go
                for bulky in ("hosts", "seedbox", "external"):
                    shutil.rmtree(work / bulky, ignore_errors=True)
        rounds.append(r)
        print(json.dumps({"round": number, "seconds": round(r.seconds, 1), "faults": r.faults,
                          "source_over_size": r.source_over_size, "source_extra": r.source_extra,
                          "verified_again": r.verified_again,
                          "corrupt": r.corrupt, "unfinished": r.unfinished, "honest_banned": r.honest_banned,
                          "honest_struck": r.honest_struck,
                          "notes": r.notes}), flush=True)
    lines = [f"`python -m tools.lab.soak --rounds {args.rounds} --seed {args.seed} --size {args.size}` "
             f"({time.strftime('%Y-%m-%d %H:%M')}, {time.monotonic() - started:.0f} s)", "", *table(rounds)]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    bad = [r.number for r in rounds if r.losses]
    print(f"rounds with a loss: {bad or 'none'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
