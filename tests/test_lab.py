"""A small emulated datacenter (tools/lab.py): two racks behind shaped uplinks, an ingress link
to external storage, a model distributed to every host. A test of correctness, not of speed: every
host activates, external storage is read exactly once, each rack receives the model over its uplink.

Needs root and iproute2: skipped elsewhere with the reason, required under CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.system import skip_or_fail
from tools.lab import Lab, Topology
from tools.netns import NetnsUnavailable

pytestmark = pytest.mark.integration
MiB = 1 << 20


def test_a_small_datacenter_gets_the_model_read_once_from_external_storage(tmp_path: Path) -> None:
    try:
        lab = Lab(Topology(racks=2, hosts_per_rack=2, nic_mbit=200, uplink_mbit=100, ingress_mbit=50), tmp_path)
    except NetnsUnavailable as exc:
        skip_or_fail(f"cannot make network namespaces here: {exc}")
    with lab:
        result = lab.distribute(size=16 * MiB)
    print(result.summary())
    assert len(result.completion) == 4
    assert result.source_bytes == result.size  # external storage read exactly once
    # Each rack received the model at least once over its uplink (plus protocol overhead).
    assert result.cross_rack_bytes >= 2 * result.size
    assert result.seconds >= result.t_min * 0.9  # nothing beats the physics (a check of the bound itself)
