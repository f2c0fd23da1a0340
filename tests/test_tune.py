"""How the settings sweep judges a candidate: by its ratio to the baseline fetch run beside it."""

from __future__ import annotations

import pytest

from tools.bench.dataplane import GIB, Row
from tools.bench.tune import BASELINE, CANDIDATES, Candidate, Trial, judge, rotated


def row(seconds: float, cpu: float) -> Row:
    return Row("s", "p", GIB, seconds, cpu, ("python", cpu / 2), 0)


def trial(name: str, round_: int, seconds: float, cpu: float, base: Trial | None = None) -> Trial:
    return Trial(name, round_, row(seconds, cpu), row(seconds, 1.0), base)


FAST = Candidate("fast", client={"x": 1})


@pytest.mark.parametrize(("pairs", "rate_ratio", "cpu_ratio", "spread"), [
    # (baseline seconds, baseline CPU, candidate seconds, candidate CPU) per round
    ([(10, 4.0, 10, 4.0)], 1.0, 1.0, (1.0, 1.0)),
    ([(10, 4.0, 5, 2.0)], 2.0, 0.5, (0.5, 0.5)),
    # the machine slowed between rounds: the ratios to the neighbour stay the same
    ([(10, 4.0, 8, 3.0), (20, 8.0, 16, 6.0)], 1.25, 0.75, (0.75, 0.75)),
    # the median, not the mean: one round's outlier does not decide
    ([(10, 4.0, 10, 2.0), (10, 4.0, 10, 4.0), (10, 4.0, 10, 4.4)], 1.0, 1.0, (0.5, 1.1)),
])
def test_a_candidate_is_judged_against_the_baseline_beside_it(
        pairs: list[tuple[float, float, float, float]], rate_ratio: float, cpu_ratio: float,
        spread: tuple[float, float]) -> None:
    trials = []
    for r, (bs, bc, cs, cc) in enumerate(pairs):
        base = trial(BASELINE.name, r, bs, bc)
        trials += [base, trial(FAST.name, r, cs, cc, base)]
    base_verdict, verdict = judge([BASELINE, FAST], trials)
    assert base_verdict.rate_ratio == base_verdict.client_cpu_ratio == 1.0
    assert verdict.rate_ratio == pytest.approx(rate_ratio)
    assert verdict.client_cpu_ratio == pytest.approx(cpu_ratio)
    assert verdict.spread == pytest.approx(spread)


def test_a_candidate_that_never_ran_gets_no_verdict() -> None:
    base = trial(BASELINE.name, 0, 10, 4.0)
    assert [v.candidate for v in judge([BASELINE, FAST], [base])] == [BASELINE]


def test_each_round_starts_with_another_candidate() -> None:
    names = [c.name for c in CANDIDATES[1:4]]
    firsts = [rotated(CANDIDATES[1:4], r)[0].name for r in range(3)]
    assert sorted(firsts) == sorted(names)
    assert all(sorted(c.name for c in rotated(CANDIDATES[1:4], r)) == sorted(names) for r in range(5))


def test_candidates_have_unique_names_and_known_settings() -> None:
    import libtorrent as lt

    known = set(lt.default_settings())
    assert len({c.name for c in CANDIDATES}) == len(CANDIDATES)
    for c in CANDIDATES:
        assert set(c.client) <= known and set(c.seedbox) <= known, c.name
