"""A striped version with nothing saved is checked on disk once, not once per stripe: the pieces
found (common/ondisk.py, against the manifest) are given to every stripe's torrent, and
libtorrent hashes nothing again (its own check would hash every piece for each stripe)."""

from __future__ import annotations

import time
from pathlib import Path

import libtorrent as lt
import pytest

from common import ondisk
from common.layout import plan
from common.lt_session import Caps, make_session
from seedbox.seeder import Torrents
from tests.conftest import write_model
from tests.test_torrent import build_from_tree

PS = 64 * 1024
PIECES = 24


def pieces_read(ses: lt.session) -> int:
    """libtorrent's disk reads so far (a check reads each piece once to hash it)."""
    ses.post_session_stats()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for alert in ses.pop_alerts():
            if isinstance(alert, lt.session_stats_alert):
                return int(alert.values["disk.num_read_ops"])
        time.sleep(0.02)
    raise AssertionError("no session stats")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # rename_file(): what add_params uses
@pytest.mark.parametrize("checked_once", [False, True])
def test_stripes_over_files_on_disk_are_not_hashed_again_per_stripe(tmp_path: Path, checked_once: bool) -> None:
    model = write_model(tmp_path / "m", {"w.safetensors": PIECES * PS - 100})
    torrent, digests = build_from_tree(model, PS, "v2")
    layout = plan([("w.safetensors", PIECES * PS - 100)], PS)
    # One piece cut short on disk (a kill mid-write): found missing either way.
    with open(model / "w.safetensors", "r+b") as f:
        f.seek(5 * PS)
        f.write(bytes(100))
    on_disk = ondisk.written_after_the_save(layout, [d.v2 for d in digests], model, set()) if checked_once else None
    ses = make_session("127.0.0.1:0", Caps())
    handles = Torrents(ses, torrent, 3, str(model), layout.num_pieces, on_disk)
    deadline = time.monotonic() + 30
    while handles.checking():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    have = handles.have(layout.num_pieces)
    assert [i for i, h in enumerate(have) if not h] == [5]
    if checked_once:
        assert on_disk == set(range(PIECES)) - {5}
        assert pieces_read(ses) == 0
    else:  # libtorrent's check, every piece once for each of the 3 stripes' torrents
        assert pieces_read(ses) >= 3 * (PIECES - 1)
