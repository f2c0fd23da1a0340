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


def test_the_simulator_is_also_checked_with_the_source_at_the_rate_it_was_measured_at() -> None:
    from tools.bench.distribute import simulated_from
    from tools.lab.topology import Topology

    topology, size = Topology(2, 2, 200, 100, 50), 8 * 2**20  # 1.3 s on the 50 Mbit/s ingress
    nominal = simulated_from("modeltorrent-striped", topology, size, 2.0, 0.4, 4, 2, piece=2**20)
    assert "source_error" not in nominal  # the run's ingest not given
    slowed = simulated_from("modeltorrent-striped", topology, size, 2.0, 0.4, 4, 2, piece=2**20, ingest=2.6)
    assert slowed["sim_error"] == nominal["sim_error"]  # the nominal check is unchanged
    # a source that took twice its link's time: the replayed swarm ends about 1.3 s later
    assert slowed["source_error"] * 2.0 - slowed["sim_error"] * 2.0 == pytest.approx(1.3, abs=0.3)
