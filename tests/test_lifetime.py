"""How long peers stay and what their announces say, with the values stock clients send: the pure
rules (table-driven), then announces through the swarm on a real database with a clock we move."""

from __future__ import annotations

import random
from pathlib import Path
from urllib.parse import quote_from_bytes

import pytest
from pydantic import SecretStr
from sqlmodel import Session

from tracker import swarm
from tracker.db import make_engine
from tracker.lifetime import holds_pieces, is_completion, peer_ttl
from tracker.models import Host, Release
from tracker.peers import Policy
from tracker.peerstore import PeerStore
from tracker.protocol import parse_announce
from tracker.settings import TrackerSettings

# The trial's model: 167,785,282 bytes of files, 4 pieces of 64 MiB; clients report left 268,435,456.
TOTAL, TORRENT = 167_785_282, 4 << 26
OURS, STOCK = "modeltorrent/0.1", "qBittorrent/4.5.2"


@pytest.mark.parametrize(("case", "gap", "ours", "ttl"), [
    ("our client, first announce", None, True, 150),
    ("our client at the tracker's interval", 60, True, 150),
    ("a stock client's first announce: rtorrent may take 600 s", None, False, 900),
    ("stock libtorrent at its 300 s floor", 300, False, 450),
    ("rtorrent at 600 s", 600, False, 900),
    ("a client quicker than the interval keeps the tracker's TTL", 20, False, 150),
    ("a client gone for hours is not kept for hours", 7200, False, 1800),
])
def test_a_peer_is_kept_for_its_own_pace(case: str, gap: float | None, ours: bool, ttl: float) -> None:
    assert peer_ttl(150, gap, ours) == ttl


@pytest.mark.parametrize(("case", "left", "holds"), [
    ("fresh, counted with padding (libtorrent, qBittorrent, Deluge)", TORRENT, False),
    ("fresh, counted without padding", TOTAL, False),
    ("one piece, padded count: above the file data, still holds one", TORRENT - (1 << 26), True),
    ("one piece, unpadded count", TOTAL - (1 << 26), True),
    ("all but a byte", 1, True),
    ("seed", 0, True),
])
def test_holding_pieces_is_judged_on_either_count(case: str, left: int, holds: bool) -> None:
    assert holds_pieces(left, TOTAL, TORRENT) is holds


@pytest.mark.parametrize(("case", "left", "previous", "event", "counts"), [
    ("the completed event", 0, 100, True, True),
    ("left falls to 0 without the event (ctorrent)", 0, 100, False, True),
    ("the event after left fell to 0 is not counted twice", 0, 0, True, False),
    ("a seed's first announce is no download", 0, None, False, False),
    ("completed as a first announce (the tracker restarted)", 0, None, True, True),
    ("still downloading", 50, 100, False, False),
])
def test_a_finished_download_is_counted_once(case: str, left: int, previous: int | None, event: bool,
                                             counts: bool) -> None:
    assert is_completion(left, previous, event) is counts


# -- through the swarm ------------------------------------------------------------------------


class World:
    """A tracker's swarm state on a real SQLite database, announced to with explicit times."""

    def __init__(self, tmp_path: Path) -> None:
        self.engine = make_engine(f"sqlite:///{tmp_path / 'tracker.db'}")
        self.settings = TrackerSettings(admin_token=SecretStr("x"), interval=60, interval_jitter=0)
        with Session(self.engine) as session:
            release = Release(name="m", version="1", root="0" * 64, total_size=TOTAL, torrent_size=TORRENT,
                              num_pieces=4, info_hash_v1=None, info_hash_v2="ab" * 20, manifest="{}", torrent=b"x")
            session.add(release)
            for name, location, role in [("seedbox", "dc|p|seed", "seedbox"), ("h1", "dc|p|r1", "client"),
                                         ("h2", "dc|p|r1", "client"), ("stock", "dc|p|r1", "client")]:
                session.add(Host(name=name, location=location, role=role, passkey=name.ljust(32, "k")))
            session.commit()
        self.directory = swarm.Directory(self.engine, announces_per_host=1000, announce_burst=1000)
        self.store = PeerStore(self.engine)
        self.indexes = swarm.Indexes(Policy())

    def announce(self, host: str, peer: str, now: float, *, agent: str = OURS, **params: object) -> dict:
        query = {"info_hash": bytes.fromhex("ab" * 20), "peer_id": peer.encode().ljust(20, b"-"), "port": 6881,
                 "uploaded": 0, "downloaded": 0, "left": TORRENT, "compact": 0, "passkey": host.ljust(32, "k")}
        query |= params
        raw = "&".join(f"{k}={quote_from_bytes(v if isinstance(v, bytes) else str(v).encode())}"
                       for k, v in query.items() if v is not None).encode()
        body = swarm.announce(self.settings, self.directory, self.store, self.indexes, parse_announce(raw),
                              f"10.0.0.{sum(map(ord, host)) % 250 + 1}", now, random.Random(1), user_agent=agent)
        return _decode(body)

    def peers(self, host: str, peer: str, now: float, **params: object) -> set[str]:
        answer = self.announce(host, peer, now, **params)  # type: ignore[arg-type]
        return {p[b"peer id"].rstrip(b"-").decode() for p in answer[b"peers"]}


def _decode(body: bytes) -> dict:
    import bencode

    decoded = bencode.Bencode(encoding=None).decode(body)
    assert b"failure reason" not in decoded, decoded
    return decoded


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_stock_seed_announcing_every_300_s_stays_in_the_swarm_and_a_dead_client_of_ours_leaves(
        world: World) -> None:
    world.announce("stock", "qb", 0, agent=STOCK, left=0, event="started")
    world.announce("h2", "ours", 0)
    for t, stock_announces in [(160, False), (300, True), (460, False), (600, True), (760, False), (900, True)]:
        if stock_announces:
            world.announce("stock", "qb", t, agent=STOCK, left=0)
        seen = world.peers("h1", "asker", t)
        assert "qb" in seen, t
        assert "ours" not in seen, t  # silent since 0: gone after 150 s


def test_a_client_restarted_without_stopped_takes_its_old_entrys_place_and_role(world: World) -> None:
    world.announce("seedbox", "sb", 0, left=0)
    assert "sb" in world.peers("h1", "first", 1)  # h1 is the rack's first downloader: its gateway
    world.announce("h2", "other", 2)
    for restart, t in enumerate((10, 20, 30)):
        seen = world.peers("h1", f"again{restart}", t)  # a new peer id, no stopped
        assert "sb" in seen, "the restarted gateway was not given the seedbox"
        assert not seen & {"first", "again0", "again1"}, "its dead entries are still handed out"
    assert world.peers("h2", "other", 40) == {"again2"}  # its rack-mate hears of the live entry only


def test_what_peers_hold_is_judged_on_the_padded_size(world: World) -> None:
    world.announce("h2", "fresh", 0)  # left = TORRENT, as libtorrent counts it
    world.announce("stock", "one-piece", 0, left=TORRENT - (1 << 26), agent=STOCK)
    index = world.indexes.get(world.directory.release(bytes.fromhex("ab" * 20)),  # type: ignore[arg-type]
                              world.store.view(1), world.directory, 1)
    holds = {c.key.peer_id.rstrip(b"-").decode(): c.has_pieces for c in index.candidates}
    assert holds == {"fresh": False, "one-piece": True}


def test_lenient_announces_port_0_and_no_left(world: World) -> None:
    world.announce("h2", "seeder", 0, left=0)
    answer = world.announce("stock", "closed", 1, port=0, agent=STOCK)
    assert [p[b"peer id"].rstrip(b"-") for p in answer[b"peers"]] == [b"seeder"]  # it is told about others
    assert "closed" not in world.peers("h1", "asker", 2)  # but nobody can connect to it
    noleft = world.announce("stock", "noleft", 3, left=None, agent=STOCK)
    assert noleft[b"complete"] == 1  # the seeder only: no left is no seed
    assert "noleft" not in world.announce("h1", "asker", 4, left=0)[b"peers"]  # seeds are not told of
    # ... other seeds; a peer without left is a leecher, so a seed hears of it
    assert b"noleft" in {p[b"peer id"].rstrip(b"-") for p in world.announce("h1", "asker", 5, left=0)[b"peers"]}
    assert len(world.announce("h1", "asker", 6, numwant=10**9)[b"peers"]) == 2  # clamped, not refused


def test_a_seedbox_still_ingesting_counts_as_a_seeder_not_a_leecher(world: World) -> None:
    world.announce("seedbox", "sb", 0, left=TORRENT // 2)
    world.announce("h1", "downloader", 0)
    world.store.flush()
    with Session(world.engine) as session:
        assert swarm.swarm_counts(session, 1, 1) == (1, 1)


def test_a_peer_that_stops_half_way_is_no_download(world: World) -> None:
    world.announce("stock", "quitter", 0, agent=STOCK)
    world.announce("stock", "quitter", 30, left=TORRENT // 2, event="stopped", agent=STOCK)
    world.store.flush()
    with Session(world.engine) as session:
        [entry] = swarm.scrape(session, world.settings, "h1".ljust(32, "k"), [bytes.fromhex("ab" * 20)], 31)
    assert entry.downloaded == 0


def test_scrape_counts_a_download_finished_without_the_completed_event(world: World) -> None:
    world.announce("stock", "ctorrent", 0, agent=STOCK)
    world.announce("stock", "ctorrent", 60, left=0, agent=STOCK)  # no event=completed
    world.store.flush()
    with Session(world.engine) as session:
        [entry] = swarm.scrape(session, world.settings, "h1".ljust(32, "k"), [bytes.fromhex("ab" * 20)], 61)
    assert (entry.complete, entry.downloaded) == (1, 1)
