"""The ingress cap: one token bucket shared by every thread reading from external storage.

The seedbox's link to external storage is often the slowest and most shared in the fleet; the cap
keeps one model's pull from starving everything else on it.
"""

from __future__ import annotations

from typing import BinaryIO

from common.ratelimit import TokenBucket
from seedbox.sources import Source


class CappedSource:
    """A source whose reads draw from a token bucket before they start."""

    def __init__(self, source: Source, bucket: TokenBucket) -> None:
        self.source = source
        self.bucket = bucket

    @property
    def bytes_read(self) -> int:
        return self.source.bytes_read

    def read_into(self, path: str, offset: int, length: int, out: BinaryIO) -> None:
        self.bucket.take(length)
        self.source.read_into(path, offset, length, out)

    def read(self, path: str, offset: int, length: int) -> bytes:
        self.bucket.take(length)
        return self.source.read(path, offset, length)

    def close(self) -> None:
        self.source.close()
