"""The seedbox's upload slots: libtorrent's unchoke limit is its session's, and the seedbox holds
every stripe's torrent in one session, so it gets the per-swarm number for each stripe."""

from __future__ import annotations

import pytest

from seedbox.seeder import seedbox_slots
from tests.test_simulate import scenario


@pytest.mark.parametrize("per_swarm,stripes,expected", [
    (4, 1, 4),  # one torrent: as a host
    (4, 4, 16),  # 2x4 lab: 8 gateways, all unchoked at once
    (4, 10, 40),
    (1, 3, 3),
    (4, 0, 4),  # not striped
])
def test_the_seedbox_gets_its_slots_for_each_stripe(per_swarm: int, stripes: int, expected: int) -> None:
    assert seedbox_slots(per_swarm, stripes) == expected


@pytest.mark.parametrize("kw,expected", [
    (dict(), 4),
    (dict(stripes=4), 16),
    (dict(stripes=4, stock=True), 4),  # plain BitTorrent has no stripes
])
def test_the_simulator_gives_the_seedbox_the_same_slots(kw: dict[str, object], expected: int) -> None:
    sc = scenario(**kw)
    assert sc.seedbox_slots == expected == (seedbox_slots(sc.slots, 1 if sc.stock else sc.stripes))
