"""Generate a model folder of valid safetensors shards filled with random weights."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

CHUNK = 16 * 1024 * 1024


def generate_model(root: Path, size: int, shards: int | None = None) -> list[Path]:
    """Write about ``size`` bytes as ``shards`` safetensors files (F16 tensors) plus config.json."""
    root.mkdir(parents=True, exist_ok=True)
    shards = shards or max(1, min(8, size // (64 * 1024 * 1024)))
    per_shard = max(2, size // shards)
    paths = []
    for s in range(shards):
        n_bytes = per_shard - per_shard % 2
        header = {
            "__metadata__": {"format": "pt", "generator": "modeltorrent demo"},
            f"layers.{s}.weight": {"dtype": "F16", "shape": [n_bytes // 2], "data_offsets": [0, n_bytes]},
        }
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes
        path = root / f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(raw)) + raw)
            left = n_bytes
            while left:
                n = min(CHUNK, left)
                f.write(os.urandom(n))
                left -= n
        paths.append(path)
    (root / "config.json").write_text(json.dumps({"model_type": "demo", "shards": shards}, indent=2))
    return paths
