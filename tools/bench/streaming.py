"""Each host's upload and download in a lab run while the model streamed in (the middle half of
the seedbox's ingest), from a distribution benchmark's JSON report: who carried the pieces.

    python -m tools.bench.streaming docs/fleet-suite/20261203-053115.json [--scenario modeltorrent]

Rates in Mbit/s on the wire (headers and duplicate blocks included), per rack: the seedbox's
intake, each rack's intake over its uplink, and each host's upload and download, busiest uploader
first. Runs from before hosts' sent bytes were recorded have no upload column.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from common.units import parse_size


def window(timeline: list[dict[str, Any]], size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The samples at a quarter and three quarters of the seedbox's intake."""
    first = next(s for s in timeline if s["seedbox"] >= size / 4)
    last = next(s for s in timeline if s["seedbox"] >= size * 3 / 4)
    return first, last


def rates(timeline: list[dict[str, Any]], size: int) -> list[str]:
    a, b = window(timeline, size)
    seconds = b["at"] - a["at"]

    def mbit(key: str, name: str | None = None) -> float:
        before, after = (a[key], b[key]) if name is None else (a[key].get(name, 0), b[key].get(name, 0))
        return (after - before) * 8 / seconds / 1e6

    sent = f", upload {mbit('seedbox_sent'):.1f}" if "seedbox_sent" in b else ""
    lines = [f"{a['at']:.1f}-{b['at']:.1f} s: seedbox intake {mbit('seedbox'):.1f} Mbit/s{sent}; racks' intake "
             + ", ".join(f"{r} {mbit('racks', r):.1f}" for r in sorted(b["racks"]))]
    hosts = sorted(b["hosts"], key=lambda h: -mbit("sent", h) if "sent" in b else h)
    lines.append("| host | up | down |")
    lines.append("|---|---|---|")
    lines += [f"| {h} | {mbit('sent', h):.1f} | {mbit('hosts', h):.1f} |" if "sent" in b else
              f"| {h} | - | {mbit('hosts', h):.1f} |" for h in hosts]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="a JSON report of python -m tools.bench.distribute")
    parser.add_argument("--scenario", help="one scenario of the report (default: each)")
    args = parser.parse_args()
    try:
        doc = json.loads(args.report.read_text())
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read {args.report}: {exc}")
    size = parse_size(doc["topology"].get("size", "64MiB"))
    names = [args.scenario] if args.scenario else list(doc["timelines"])
    for name in names:
        if name not in doc["timelines"]:
            parser.error(f"no scenario {name!r} in {args.report} (has: {', '.join(doc['timelines'])})")
        print(f"\n{name}")
        print("\n".join(rates(doc["timelines"][name], size)))


if __name__ == "__main__":
    main()
