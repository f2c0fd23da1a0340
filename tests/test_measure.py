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


def test_streaming_rates_are_taken_over_the_middle_half_of_the_ingest() -> None:
    from tools.bench.streaming import rates

    def sample(at: float, seedbox: int, up: int) -> dict:
        return {"at": at, "seedbox": seedbox * MiB, "racks": {"rack1": seedbox * MiB},
                "hosts": {"a": seedbox * MiB, "b": 0}, "sent": {"a": 0, "b": up * MiB}}

    # 100 MiB at 10 MiB/s from t=1; host b uploads 20 MiB/s only between 3.5 and 8.5 s
    timeline = [sample(1.0, 0, 0), sample(3.5, 25, 0), sample(8.5, 75, 100), sample(11.0, 100, 100)]
    lines = rates(timeline, 100 * MiB)
    assert lines[0].startswith("3.5-8.5 s: seedbox intake 83.9 Mbit/s; racks' intake rack1 83.9")
    assert lines[3:] == ["| b | 167.8 | 0.0 |", "| a | 0.0 | 83.9 |"]
