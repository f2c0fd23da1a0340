"""The naive baseline of the distribution benchmark: download a model's files over HTTP.

    python -m tools.lab.pull BASE_URL OUT_DIR FILE...
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx


def pull(base: str, out: Path, files: list[str]) -> int:
    """Download ``base + file`` to ``out/file`` for each file; returns the bytes written."""
    written = 0
    for rel in files:
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with httpx.stream("GET", base + rel, timeout=600) as response, open(path, "wb") as f:
            response.raise_for_status()
            for chunk in response.iter_bytes(1 << 20):
                written += f.write(chunk)
    return written


if __name__ == "__main__":
    pull(sys.argv[1], Path(sys.argv[2]), sys.argv[3:])
