"""What a distribution in the lab measured: byte counters over time, per-host completion, how busy
the CPUs were (a saturated run measures the machine, not the network), and the figures a benchmark
reports against the physical limit.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sample:
    at: float
    hosts: dict[str, int]  # bytes received by each client host
    racks: dict[str, int]  # bytes into each rack over its uplink
    seedbox: int = 0  # bytes received by the seedbox (from external storage, nearly all)
    sent: dict[str, int] = field(default_factory=dict)  # bytes sent by each client host
    seedbox_sent: int = 0  # bytes the seedbox sent (to hosts, nearly all)


@dataclass
class Result:
    hosts: int
    size: int
    seconds: float  # start to the last host activated
    t_min: float
    source_bytes: int  # read from external storage
    cross_rack_bytes: int  # into racks over their uplinks
    racks: int
    completion: list[float] = field(default_factory=list)  # per host, seconds from the start
    cpu_busy: float = 0.0  # share of all cores busy during the run
    # byte counters over time, every ~0.25 s
    timeline: list[Sample] = field(default_factory=list)
    done_at: dict[str, float] = field(default_factory=dict)  # each host's activation, s from the start

    @property
    def ingress_start(self) -> float:
        """Seconds from the start to the seedbox's first bytes from external storage (its start-up:
        process, manifest, session, first announce), to the counters' resolution."""
        return next((s.at for s in self.timeline if s.seedbox > 64 * 1024), 0.0)

    def phases(self) -> dict[str, float]:
        """Where the time went, to the counters' resolution (~0.25 s): ``start`` (the seedbox's
        start-up), ``ingest`` (its first to last byte from external storage), ``tail`` (from there
        to the last host having received the model's size), ``finish`` (from there to that host's
        activation: the last pieces' checks, flushes and the symlink swap; the lab looks every
        ~0.25 s), and ``activation``, the median over hosts of received-all to activated. Counters
        count headers and duplicate blocks too, so a host "has received" a little early. Empty
        without a timeline."""
        if not self.timeline or not self.done_at:
            return {}
        start = self.ingress_start
        ingested = next((s.at for s in self.timeline if s.seedbox >= self.size), self.timeline[-1].at)
        received = {h: next((s.at for s in self.timeline if s.hosts.get(h, 0) >= self.size), at)
                    for h, at in self.done_at.items()}
        last = max(self.done_at, key=lambda h: self.done_at[h])
        tail_end = max(received.values())
        return {"start": round(start, 2), "ingest": round(ingested - start, 2),
                "tail": round(max(tail_end - ingested, 0.0), 2),
                "finish": round(self.done_at[last] - max(tail_end, ingested), 2),
                "activation": round(statistics.median(at - received[h] for h, at in self.done_at.items()), 2)}

    @property
    def ratio(self) -> float:
        return self.seconds / self.t_min

    def summary(self) -> dict[str, Any]:
        done = sorted(self.completion)
        return {
            "hosts": self.hosts, "seconds": round(self.seconds, 2), "t_min": round(self.t_min, 2),
            "t_over_t_min": round(self.ratio, 2), "source_bytes_over_size": round(self.source_bytes / self.size, 3),
            "cross_rack_over_min": round(self.cross_rack_bytes / (self.racks * self.size), 2),
            "p50": round(statistics.median(done), 2), "p99": round(done[min(len(done) - 1, int(len(done) * 0.99))], 2),
            "max": round(done[-1], 2), "cpu_busy": round(self.cpu_busy, 2),
        }


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot (/proc/stat)."""
    fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


class CpuMeter:
    """The share of all cores busy between its start and ``busy()``."""

    def __init__(self) -> None:
        self.busy0, self.total0 = cpu_times()

    def busy(self) -> float:
        busy1, total1 = cpu_times()
        return (busy1 - self.busy0) / max(total1 - self.total0, 1)
