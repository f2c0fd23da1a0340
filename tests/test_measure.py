"""Where a lab run's time went (tools/lab/measure.py Result.phases), from byte counters."""

from __future__ import annotations

import pytest

from tools.lab.measure import Result, Sample

MiB = 1 << 20
SIZE = 1000 * MiB


def run(samples: list[tuple[float, int, int, int]], done: dict[str, float]) -> Result:
    """Samples of (time, seedbox received, host a received, host b received), in MiB."""
    timeline = [Sample(at, {"a": a * MiB, "b": b * MiB}, {}, seedbox * MiB) for at, seedbox, a, b in samples]
    return Result(2, SIZE, max(done.values()), 10.0, SIZE, 0, 1, list(done.values()), timeline=timeline,
                  done_at=done)


@pytest.mark.parametrize("samples,done,phases", [
    # start-up 1 s, ingest 10 s, the hosts a second behind, activated half a second later
    ([(0.0, 0, 0, 0), (1.0, 100, 0, 0), (11.0, 1000, 900, 800), (12.0, 1000, 1000, 1000)],
     {"a": 12.5, "b": 12.5}, {"start": 1.0, "ingest": 10.0, "tail": 1.0, "finish": 0.5, "activation": 0.5}),
    # a host that has every byte when the seedbox has: no tail; the median of 0.5 and 2.0 s
    ([(0.0, 0, 0, 0), (2.0, 100, 0, 0), (6.0, 1000, 1000, 1000)],
     {"a": 6.5, "b": 8.0}, {"start": 2.0, "ingest": 4.0, "tail": 0.0, "finish": 2.0, "activation": 1.25}),
    # headers: a host's counter passes the size before its last payload byte; never a negative phase
    ([(0.0, 0, 0, 0), (0.5, 100, 0, 0), (5.0, 900, 1000, 1000), (5.5, 1000, 1000, 1000)],
     {"a": 5.5, "b": 6.0}, {"start": 0.5, "ingest": 5.0, "tail": 0.0, "finish": 0.5, "activation": 0.75}),
])
def test_phases_split_a_run_into_start_ingest_tail_and_finish(
        samples: list[tuple[float, int, int, int]], done: dict[str, float], phases: dict[str, float]) -> None:
    result = run(samples, done)
    assert result.phases() == phases
    assert result.phases()["start"] == result.ingress_start


def test_no_timeline_no_phases() -> None:
    assert Result(1, SIZE, 1.0, 1.0, SIZE, 0, 1).phases() == {}
