"""A model that exists nowhere: its bytes are a function of (seed, file, offset), made as they are read.

For big-model runs (``python -m tools.bench.bigmodel``): the origin serves such a model
(``python -m tools.demo.origin --generate 32GiB``), so a 32 GiB model costs no disk at the source
and only the seedbox's and the hosts' copies land on disk. Bytes come from slices of a 2 MiB random
buffer, each MiB of each file at its own offset in it, so no two MiB of a model are alike (no two
pieces hash the same) and reading runs at memory speed.
"""

from __future__ import annotations

import random
import zlib

from common.units import parse_size

BLOCK = 1 << 20
SHARD = 8 << 30  # safetensors shards of at most 8 GiB, as big checkpoints are cut
SEED = 20261202


class GeneratedModel:
    def __init__(self, size: int, seed: int = SEED, shard: int = SHARD) -> None:
        if size <= 0:
            raise ValueError("a generated model needs a size above 0")
        count = -(-size // shard)
        self.files: dict[str, int] = {}
        for i in range(count):
            name = f"model-{i + 1:05d}-of-{count:05d}.safetensors"
            self.files[name] = min(shard, size - i * shard)
        self.files["config.json"] = 64  # a small file too, as real models have
        self._base = random.Random(seed).randbytes(2 * BLOCK)
        self._salt = {path: zlib.crc32(f"{seed}/{path}".encode()) for path in self.files}

    @classmethod
    def parse(cls, spec: str) -> GeneratedModel:
        """``SIZE`` or ``SIZE:SEED`` (e.g. ``32GiB`` or ``1GiB:7``). Raises ValueError."""
        size, _, seed = spec.partition(":")
        return cls(parse_size(size), int(seed) if seed else SEED)

    @property
    def total_size(self) -> int:
        return sum(self.files.values())

    def read(self, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes of ``path`` from ``offset`` (fewer at the file's end). KeyError for a
        file the model does not have."""
        end = min(offset + length, self.files[path])
        parts = []
        at = offset
        while at < end:
            block, inside = divmod(at, BLOCK)
            n = min(BLOCK - inside, end - at)
            start = (block * 2654435761 + self._salt[path]) % BLOCK + inside
            parts.append(self._base[start:start + n])
            at += n
        return b"".join(parts)
