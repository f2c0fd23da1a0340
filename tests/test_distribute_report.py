"""The distribution benchmark's report: which runs it flags as limited by the machine's CPU."""

from __future__ import annotations

import pytest

from tools.bench.distribute import cpu_flag

LINK = 21.47  # 256 MiB at 100 Mbit/s, s


@pytest.mark.parametrize(("busy", "ingest", "link", "flagged", "case"), [
    (0.95, 24.3, LINK, " (CPU-bound)", "the machine busy: flagged whatever the source did"),
    (0.87, 26.5, LINK, " (CPU-bound: the source read at 0.81 of its link)", "2x4 at full rates, 2026-12-04"),
    (0.87, 22.3, LINK, "", "2x10: as busy, but the source kept up"),
    (0.45, 45.3, 42.95, "", "2x4 at half the rates"),
    (0.70, 30.0, LINK, "", "a slow source on a machine with room: the source's, not the CPU's"),
    (0.87, 26.5, None, "", "the link's time unknown"),
])
def test_a_run_is_flagged_when_the_cpu_may_have_limited_it(busy: float, ingest: float, link: float | None,
                                                            flagged: str, case: str) -> None:
    r = {"cpu_busy": busy, "phases": {"ingest": ingest}}
    assert cpu_flag(r, link) == flagged, case


def test_a_run_without_phases_is_flagged_by_busy_alone() -> None:
    assert cpu_flag({"cpu_busy": 0.95, "phases": {}}, LINK) == " (CPU-bound)"
    assert cpu_flag({"cpu_busy": 0.85, "phases": {}}, LINK) == ""
