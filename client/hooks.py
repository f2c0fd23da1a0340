"""The command a host runs after a version becomes active (``on_activate``)."""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

log = logging.getLogger("modeltorrent.client")


def run_on_activate(command: str | None, name: str, version: str, path: Path, timeout: float) -> str | None:
    """Run the hook, if any. The model is already active whatever it does: a failing hook is
    reported (the returned error text), never undone, so that a flaky reload cannot leave a host
    half way between versions. Returns None on success or when there is no hook."""
    if not command:
        return None
    env = os.environ | {"MODELTORRENT_MODEL": name, "MODELTORRENT_VERSION": version,
                        "MODELTORRENT_PATH": str(path)}
    try:
        done = subprocess.run(command, shell=True, env=env, timeout=timeout, capture_output=True, text=True)
    except subprocess.TimeoutExpired:
        error = f"on-activate hook timed out after {timeout:.0f}s: {command}"
    else:
        if done.returncode == 0:
            log.info("on-activate hook done: %s", command)
            return None
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        error = f"on-activate hook exited {done.returncode}: {command}: {tail[0]}"
    log.error("%s", error)
    return error
