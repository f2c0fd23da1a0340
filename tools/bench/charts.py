"""PNG charts of a distribution benchmark (matplotlib, drawn off-screen).

- ``completion.png``: for each scenario, every host's share of the model received over time (one
  line per host, coloured by rack), with T_min marked: how close the fleet runs to the bound and
  how far apart hosts finish.
- ``cross-rack.png``: bytes into each rack over its uplink over time, in multiples of the model
  size (1.0 per rack is the minimum), one panel per scenario.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tools.lab.measure import Result


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # no screen here, and none needed
    import matplotlib.pyplot as plt

    return plt


def draw(results: Sequence[tuple[str, Result]], rack_of: dict[str, str], out: Path, title: str) -> list[Path]:
    """Write the two charts under ``out``; returns their paths."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    racks = sorted(set(rack_of.values()))
    colour = {r: plt.get_cmap("tab10")(i % 10) for i, r in enumerate(racks)}

    def completion(ax: Any, name: str, r: Result, times: list[float]) -> None:
        for host in sorted(rack_of):
            share = [min(s.hosts.get(host, 0) / r.size, 1.0) for s in r.timeline]
            ax.plot(times, share, color=colour[rack_of[host]], linewidth=1)
        ax.axvline(r.t_min, color="black", linestyle="--", linewidth=1, label=f"T_min {r.t_min:.1f} s")
        ax.axvline(r.seconds, color="grey", linestyle=":", linewidth=1, label=f"T {r.seconds:.1f} s")
        ax.set_title(f"{name}: T/T_min {r.ratio:.2f}")
        ax.legend(loc="lower right", fontsize=8)

    def cross_rack(ax: Any, name: str, r: Result, times: list[float]) -> None:
        for rack in racks:
            ax.plot(times, [s.racks.get(rack, 0) / r.size for s in r.timeline], color=colour[rack], label=rack)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="minimum (1 x model)")
        ax.set_title(f"{name}: {r.cross_rack_bytes / (r.racks * r.size):.2f} x the minimum")
        ax.legend(loc="upper left", fontsize=8)

    return [_panels(plt, results, completion, "share of the model received (NIC bytes)", title,
                    out / "completion.png"),
            _panels(plt, results, cross_rack, "bytes into the rack / model size", title, out / "cross-rack.png")]


def _panels(plt: Any, results: Sequence[tuple[str, Result]], one: Callable[[Any, str, Result, list[float]], None],
            ylabel: str, title: str, path: Path) -> Path:
    """One figure, a panel per scenario side by side on a shared y axis, drawn by ``one``."""
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4), sharey=True, squeeze=False)
    for ax, (name, r) in zip(axes[0], results, strict=True):
        one(ax, name, r, [s.at for s in r.timeline])
        ax.set_xlabel("seconds")
    axes[0][0].set_ylabel(ylabel)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
