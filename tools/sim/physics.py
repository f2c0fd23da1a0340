"""The physical limit of a distribution (DESIGN.md), pure.

Peer-assisted distribution of F bytes from one source of upload rate u_s to N hosts with upload
rates u_i and download rates d_i cannot finish before (Kumar & Ross, HOTWEB 2006)::

    T_min = max(F / u_s, F / min(d_i), N * F / (u_s + sum(u_i)))

and with racks behind uplinks of rate r, not before F / r either (each rack receives the model at
least once). u_s is the ingress link from external storage to the seedbox.
"""

from __future__ import annotations

from collections.abc import Sequence


def t_min(size: float, source_rate: float, uploads: Sequence[float], downloads: Sequence[float],
          uplink: float | None = None) -> float:
    """Seconds; rates in bytes/s, ``uplink`` None when racks are not behind a narrower link."""
    if not uploads or len(uploads) != len(downloads):
        raise ValueError("one upload and one download rate per host")
    bounds = [size / source_rate, size / min(downloads), len(uploads) * size / (source_rate + sum(uploads))]
    if uplink is not None:
        bounds.append(size / uplink)
    return max(bounds)


def mbit(rate: float) -> float:
    """Bytes per second of a rate in Mbit/s (tc's "mbit": 10^6 bits)."""
    return rate * 1e6 / 8
