"""The token bucket (ingress cap, lookup limit), on a fake clock: pacing checked without waiting."""

from __future__ import annotations

import threading

import pytest

from common.ratelimit import TokenBucket
from seedbox.limits import CappedSource
from seedbox.sources import LocalSource


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


@pytest.mark.parametrize("rate,reads,size,seconds", [
    (1000, 10, 100, 0.0),       # within the first second's burst: no wait
    (1000, 30, 100, 2.0),       # 3,000 bytes at 1,000/s after a 1,000-byte burst
    (64 << 20, 64, 4 << 20, 3.0),  # 256 MiB of 4 MiB reads at 64 MiB/s
])
def test_sequential_reads_take_as_long_as_the_cap_says(rate: int, reads: int, size: int, seconds: float) -> None:
    t = FakeTime()
    bucket = TokenBucket(rate, clock=t.clock, sleep=t.sleep)
    for _ in range(reads):
        bucket.take(size)
    assert t.now == pytest.approx(seconds)


def test_concurrent_readers_share_one_cap() -> None:
    # All six ask at the same instant (a clock that stands still while they sleep).
    bucket = TokenBucket(1000, clock=lambda: 0.0, sleep=lambda s: None)
    waits: list[float] = []
    threads = [threading.Thread(target=lambda: waits.append(bucket.take(500))) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # 3,000 bytes: the first 1,000 from the burst, then each 500 waits its turn in the queue.
    assert sorted(waits) == pytest.approx([0.0, 0.0, 0.5, 1.0, 1.5, 2.0])


def test_a_capped_source_reads_the_same_bytes_and_counts_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "f").write_bytes(bytes(range(256)) * 40)
    t = FakeTime()
    source = CappedSource(LocalSource(tmp_path), TokenBucket(4096, clock=t.clock, sleep=t.sleep))
    assert source.read("f", 0, 10240) == (bytes(range(256)) * 40)[:10240]
    assert source.bytes_read == 10240 and t.now == pytest.approx(1.5)


def test_try_take_says_no_instead_of_waiting_and_refills_with_time() -> None:
    t = FakeTime()
    bucket = TokenBucket(50, clock=t.clock, sleep=t.sleep)
    assert [bucket.try_take() for _ in range(52)].count(True) == 50  # a burst of one second's worth
    t.now += 0.1
    assert [bucket.try_take() for _ in range(10)].count(True) == 5
    assert t.now == pytest.approx(0.1)  # never slept
