"""The README's main job, as a user runs it: ``modeltorrent demo`` end to end."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tools.demo.procs import REPO

pytestmark = pytest.mark.integration


def test_demo_activates_every_host_and_reads_the_source_once(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.cli", "demo", "--hosts", "3", "--size", "24MiB",
         "--workdir", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        # Every process logs at DEBUG, libtorrent's peer and tracker events included: still no secret.
        env=os.environ | {"PYTHONPATH": str(REPO), "COLUMNS": "120", "MODELTORRENT_LOG": "DEBUG",
                          "MODELTORRENT_LT_DEBUG": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "OK: every host verified and activated" in out
    assert len(re.findall(r"host-\d .*yes, every piece", out)) == 3
    m = re.search(r"bytes read from the source: (\d+) for a model of (\d+) bytes \(1\.00x\)", out)
    assert m and m.group(1) == m.group(2)
    # not a terminal: progress as lines, not a redrawn table (no cursor moves, nothing unterminated)
    assert "\x1b[" not in out and out.endswith("\n")
    assert re.search(r"^ *[\d.]+s host-1: activated$", out, re.M) and re.search(r"hosts hold 100% of the bytes", out)
    # every process the demo started is gone
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path / "demo") not in ps
    # No passkey in any process's log, at DEBUG, though every one of them announced with its own.
    with sqlite3.connect(tmp_path / "demo" / "tracker.db") as db:
        passkeys = [row[0] for row in db.execute("SELECT passkey FROM host")]
    logs = {p.name: p.read_text(errors="replace") for p in (tmp_path / "demo" / "logs").glob("*.log")}
    assert len(passkeys) == 4 and {"tracker.log", "seedbox.log", "host-1.log"} <= set(logs)
    assert sum(len(text) for text in logs.values()) > 10_000  # they did log, verbosely
    assert not [(name, key) for name, text in logs.items() for key in passkeys if key in text]
