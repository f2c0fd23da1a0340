"""How much payload the lab's shaped links carry: TCP goodput through the same ``tbf`` shaping the
lab gives every link (``netns.Fabric``), against the link's rate. The simulator takes one payload
share for every link (``Scenario.efficiency``); this measures it.

    python -m tools.lab.linkcheck [--rate 50] [--flows 1,4,16] [--seconds 8]

Two shapes, each with 1..N TCP connections (needs root):
- ``one to one``: a host sends to another over N connections (the host's upload and the other's
  download shaped to ``--rate``);
- ``one to many``: a host sends to N hosts, one connection each (a seedbox or a gateway feeding
  its rack: the sender's upload is the narrow end);
- ``download while uploading``: a host receives over N connections while it sends to another host
  as fast as its upload takes (a gateway whose uplink is full: its acknowledgements wait in the
  same ~20 ms queue as its uploads).
Goodput is counted at the receivers between the first second (TCP's ramp-up) and the end.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tools.lab.netns import Fabric, Host, NetnsUnavailable

PORT = 5201
CHUNK = 64 * 1024


def sink(seconds: float) -> None:
    """Accept connections and count the bytes that arrive between 1 s and ``seconds``; print them."""
    server = socket.create_server(("0.0.0.0", PORT), backlog=64)
    counted = [0]
    began = time.monotonic()

    def drain(conn: socket.socket) -> None:
        with conn:
            while True:
                data = conn.recv(1 << 20)
                if not data:
                    return
                if 1.0 <= time.monotonic() - began <= seconds:
                    counted[0] += len(data)

    server.settimeout(0.2)
    while time.monotonic() - began < seconds + 1:
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        threading.Thread(target=drain, args=(conn,), daemon=True).start()
    print(counted[0], flush=True)


def source(targets: list[str], seconds: float) -> None:
    """Send to each ``ip`` (repeat one for several connections) as fast as the link takes it."""
    payload = bytes(CHUNK)
    deadline = time.monotonic() + seconds  # the sinks count until then (they started first)

    def pump(ip: str) -> None:
        with socket.create_connection((ip, PORT), timeout=5) as conn:
            try:
                while time.monotonic() < deadline:
                    conn.sendall(payload)
            except OSError:  # the sink stopped listening first
                pass

    threads = [threading.Thread(target=pump, args=(ip,)) for ip in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


ME = [sys.executable, "-m", "tools.lab.linkcheck"]
CWD = Path(__file__).resolve().parents[2]


def goodput(sender: Host, receivers: list[Host], flows_each: int, seconds: float) -> float:
    """Payload bytes/s the receivers got in all."""
    return _measure(sender, receivers, flows_each, seconds)[0]


def goodput_both_ways(sender: Host, host: Host, other: Host, flows: int, seconds: float) -> tuple[float, float]:
    """Payload bytes/s ``host`` received from ``sender`` over ``flows`` connections while it sent
    to ``other`` as fast as it could, and what ``other`` received."""
    return _measure(sender, [host], flows, seconds, (host, other))


def _measure(sender: Host, receivers: list[Host], flows_each: int, seconds: float,
             busy_upload: tuple[Host, Host] | None = None) -> tuple[float, float]:
    sinks = [subprocess.Popen(r.argv(*ME, "sink", "--seconds", str(seconds)), stdout=subprocess.PIPE, text=True,
                              cwd=CWD) for r in receivers]
    side: list[subprocess.Popen[str]] = []
    if busy_upload is not None:  # its sink counts over the same window: started together, 1 s longer
        a, b = busy_upload
        side.append(subprocess.Popen(b.argv(*ME, "sink", "--seconds", str(seconds)), stdout=subprocess.PIPE,
                                     text=True, cwd=CWD))
    time.sleep(0.5)  # listening
    if busy_upload is not None:
        side.append(subprocess.Popen(a.argv(*ME, "source", "--seconds", str(seconds + 1), b.ip), text=True, cwd=CWD))
    targets = [r.ip for r in receivers for _ in range(flows_each)]
    subprocess.run(sender.argv(*ME, "source", "--seconds", str(seconds), *targets), check=True, cwd=CWD)
    total = sum(int(p.communicate(timeout=seconds + 10)[0].strip() or 0) for p in sinks)
    upload = int((side[0].communicate(timeout=seconds + 10)[0] or "0").strip() or 0) if side else 0
    for p in side[1:]:
        p.communicate(timeout=seconds + 10)
    return total / (seconds - 1.0), upload / (seconds - 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="role")
    s = sub.add_parser("sink", help=argparse.SUPPRESS)
    s.add_argument("--seconds", type=float, required=True)
    src = sub.add_parser("source", help=argparse.SUPPRESS)
    src.add_argument("--seconds", type=float, required=True)
    src.add_argument("targets", nargs="+")
    parser.add_argument("--rate", type=float, default=50.0, help="each link's rate, Mbit/s (default: 50)")
    parser.add_argument("--flows", default="1,4,16", help="connections, comma-separated (default: 1,4,16)")
    parser.add_argument("--seconds", type=float, default=8.0, help="each measurement (default: 8)")
    args = parser.parse_args()
    if args.role == "sink":
        sink(args.seconds)
        return
    if args.role == "source":
        source(args.targets, args.seconds)
        return
    try:
        flows = [int(f) for f in args.flows.split(",") if f]
    except ValueError:
        parser.error("--flows takes whole numbers, comma-separated")
    if not flows or min(flows) < 1 or args.rate <= 0 or args.seconds <= 2:
        parser.error("--flows at least 1, --rate positive, --seconds more than 2")
    rate = f"{args.rate:g}mbit"
    try:
        fabric = Fabric()
    except NetnsUnavailable as exc:
        sys.exit(f"cannot build the lab: {exc}")
    try:
        sender = fabric.host("sender", rate=rate)
        receivers = [fabric.host(f"r{i}", rate=rate) for i in range(max(flows))]
        other = fabric.host("other", rate=rate)
        print(f"TCP payload through the lab's shaped links (tbf, {args.rate:g} Mbit/s each way), "
              f"{args.seconds:g} s each, counted after the first second\n")
        print("| shape | connections | goodput Mbit/s | payload share of the link |\n|---|---|---|---|")
        for n in flows:
            for shape, got in (("one to one", goodput(sender, receivers[:1], n, args.seconds)),
                               ("one to many", goodput(sender, receivers[:n], 1, args.seconds))):
                if shape == "one to many" and n == 1:
                    continue  # the same as one to one
                print(f"| {shape} | {n} | {got * 8 / 1e6:.1f} | {got * 8 / 1e6 / args.rate:.3f} |", flush=True)
            got, sent = goodput_both_ways(sender, receivers[0], other, n, args.seconds)
            print(f"| download while uploading ({sent * 8 / 1e6:.1f} up) | {n} | {got * 8 / 1e6:.1f} | "
                  f"{got * 8 / 1e6 / args.rate:.3f} |", flush=True)
    finally:
        fabric.close()


if __name__ == "__main__":
    main()
