"""A registered host gone bad, for the fault tests: it joins model m@1's swarm as a seed of the
real model (libtorrent checks it at start, so it claims every piece), then overwrites its files in
place with random bytes, which libtorrent serves from then on (it hashes what it downloads, not what
it uploads).

    python -m tests.evil_peer TRACKER_URL PASSKEY WORKDIR MODEL_DIR

Prints one JSON line a second: peers connected and payload bytes uploaded so far.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import httpx

from common.lt_session import Caps, add_params, make_session


def main() -> None:
    tracker, passkey, workdir, model = sys.argv[1:5]
    torrent = httpx.get(f"{tracker}/api/torrents/m/1/torrent", headers={"X-Passkey": passkey}).content
    atp = add_params(torrent, workdir)
    assert atp.ti is not None
    layout = atp.ti.layout()  # paths as published: under the model's name, which add_params strips
    # Pad files (hybrid torrents) are zeros that nobody stores.
    relative = [Path(*Path(layout.file_path(i)).parts[1:]) for i in range(layout.num_files())
                if not layout.file_flags(i) & layout.flag_pad_file]
    paths = [Path(workdir) / rel for rel in relative]
    for rel, path in zip(relative, paths, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(model) / rel, path)
    ses = make_session("0.0.0.0:6881", Caps())
    handle = ses.add_torrent(atp)
    while not handle.status().is_seeding:
        ses.pop_alerts()
        time.sleep(0.1)
    for path in paths:  # in place: the same files libtorrent has open
        with open(path, "r+b") as f:
            f.write(os.urandom(path.stat().st_size))
    while True:
        status = handle.status()
        print(json.dumps({"peers": status.num_peers, "uploaded": status.total_payload_upload}), flush=True)
        ses.pop_alerts()
        time.sleep(1)


if __name__ == "__main__":
    main()
