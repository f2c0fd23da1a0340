"""A stock libtorrent session downloading one torrent from one peer: the data-plane benchmark's
yardstick for what libtorrent itself costs.

    python -m tools.bench.vanilla TORRENT SAVE_DIR HOST:PORT

libtorrent's defaults, except what every datacenter deployment turns off: uTP (30x slower than TCP
over loopback, DESIGN.md), DHT, local discovery, UPnP and NAT-PMP. It connects to the peer itself
(no tracker), waits until it holds every piece, checked by libtorrent, and prints
``{"download_seconds": ...}`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import libtorrent as lt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("torrent")
    parser.add_argument("save_dir")
    parser.add_argument("peer", help="HOST:PORT of a peer that has the whole torrent")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    host, _, port = args.peer.rpartition(":")
    if not host or not port.isdigit():
        parser.error("peer must be HOST:PORT")
    session = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_outgoing_utp": False,
                          "enable_incoming_utp": False, "enable_dht": False, "enable_lsd": False,
                          "enable_upnp": False, "enable_natpmp": False,
                          "alert_mask": int(lt.alert_category.error)})
    handle = session.add_torrent({"ti": lt.torrent_info(args.torrent), "save_path": args.save_dir})
    started = time.monotonic()
    last_connect = 0.0
    while not handle.status().is_seeding:
        now = time.monotonic()
        if now - started > args.timeout:
            sys.exit(f"not complete after {args.timeout:.0f} s")
        if handle.status().num_peers == 0 and now - last_connect > 1.0:
            handle.connect_peer((host, int(port)))
            last_connect = now
        time.sleep(0.02)
    print(json.dumps({"download_seconds": time.monotonic() - started}))


if __name__ == "__main__":
    main()
