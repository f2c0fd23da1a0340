"""A token bucket: ``rate`` units per second on average, in bursts of at most ``burst``.

Used for the seedbox's ingress cap (``take``: wait as long as the cap needs) and for the tracker's
lookups of unknown passkeys (``try_take``: never wait, just say no). Time comes in through
``clock`` and ``sleep`` so the pacing is tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else rate  # one second's worth
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.burst
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self, n: float) -> float:
        """Take ``n`` units, waiting as long as the cap needs; returns the wait.

        Reserves first and sleeps after, outside the lock: concurrent callers queue up in order
        and the average holds however many threads ask at once.
        """
        with self._lock:
            self._refill()
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)
        return wait

    def try_take(self, n: float = 1) -> bool:
        """Take ``n`` units if they are there now; never waits."""
        with self._lock:
            self._refill()
            if self._tokens < n:
                return False
            self._tokens -= n
            return True
