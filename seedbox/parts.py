"""How one piece's read from external storage is split among the reading lanes (pure: no I/O).

Lanes reading whole pieces side by side finish them together, each at 1/lanes of the ingress
rate: the swarm gets nothing until a batch of ``lanes`` pieces is whole, and a batch of bytes is
always in the spool but not yet in the swarm. Measured in the lab (2 racks x 10, ingress 25
Mbit/s, 1 MiB pieces, 4 lanes): the seedbox stayed ~10 MB behind what it had read, all run long,
and the last hosts finished 3.8 s after the last byte came in (2.5 s with one lane, which read
the model 7 % slower). Lanes reading ranges of the same piece finish pieces one at a time, in
order, at the full rate, and keep the lanes' parallel reads (a single stream to object storage is
often slower than its link). The web seed sends a piece from its parts as they are (``part_slices``):
joining them into one file first cost the seedbox 0.52 CPU-s per GiB (``copy_file_range`` of 16
MiB parts into 64 MiB pieces on this machine's ext4), 8-10 % of its ingest's CPU.
"""

from __future__ import annotations

# A range request costs a round trip to the source before its first byte; below this a part is
# more latency than transfer (64 MiB pieces read by 4 lanes give 16 MiB parts; the lab's 1 MiB
# pieces 256 KiB parts, at about 0.1 s each on its 25 Mbit/s link against a 2 ms round trip).
MIN_PART = 256 * 1024


def part_bounds(length: int, lanes: int, min_part: int = MIN_PART) -> list[tuple[int, int]]:
    """``(start, end)`` byte ranges (end exclusive) splitting a piece of ``length`` bytes into at
    most ``lanes`` nearly equal parts of at least ``min_part`` bytes (one part: the whole piece)."""
    if length <= 0:
        return [(0, 0)]
    parts = max(1, min(lanes, length // max(min_part, 1)))
    return [(length * k // parts, length * (k + 1) // parts) for k in range(parts)]


def part_slices(bounds: list[tuple[int, int]], offset: int, length: int) -> list[tuple[int, int, int]]:
    """Where bytes ``offset``..``offset + length`` of a piece read in ``bounds`` are: ``(part,
    offset in that part, bytes)`` for each part they cross, in order (``part`` indexes ``bounds``)."""
    out = []
    end = offset + length
    for k, (start, stop) in enumerate(bounds):
        lo, hi = max(start, offset), min(stop, end)
        if lo < hi:
            out.append((k, lo - start, hi - lo))
    return out
