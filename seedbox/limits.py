"""The ingress cap: a token bucket shared by every thread reading from external storage.

The seedbox's link to external storage is often the slowest and most shared in the fleet; the cap
keeps one model's pull from starving everything else on it. Time comes in through ``clock`` and
``sleep`` so the pacing is tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from seedbox.sources import Source


class TokenBucket:
    """``rate`` bytes per second on average, in bursts of at most ``burst`` bytes."""

    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else rate  # one second's worth
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.burst
        self._at = clock()
        self._lock = threading.Lock()

    def take(self, n: int) -> float:
        """Take ``n`` bytes' worth, waiting as long as the cap needs; returns the wait.

        Reserves first and sleeps after, outside the lock: concurrent readers queue up in order
        and the average holds however many threads ask at once.
        """
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)
        return wait


class CappedSource:
    """A source whose reads draw from a token bucket before they start."""

    def __init__(self, source: Source, bucket: TokenBucket) -> None:
        self.source = source
        self.bucket = bucket

    @property
    def bytes_read(self) -> int:
        return self.source.bytes_read

    def read(self, path: str, offset: int, length: int) -> bytes:
        self.bucket.take(length)
        return self.source.read(path, offset, length)

    def close(self) -> None:
        self.source.close()
