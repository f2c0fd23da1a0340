"""The seedbox's spool: bytes read from external storage are kept as they arrive, so a read cut
short (a crash, a dropped connection) costs only what it had not received. Real HTTP origin."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from common import signing
from common.errors import SourceError
from common.hashing import hash_tree
from common.layout import plan
from common.manifest import Manifest
from seedbox.parts import part_bounds
from seedbox.seeder import Seeder
from seedbox.settings import SeedboxSettings
from seedbox.sources import HttpSource
from tests.conftest import write_model
from tools.demo.procs import Procs, start_origin

PIECE = 256 * 1024
FILES = {"w.safetensors": 3 * PIECE + 1000}


def make_seeder(tmp_path: Path, publisher_key: Path, procs: Procs, timeout: float = 60.0,
                **origin: float) -> tuple[Seeder, str]:
    model = write_model(tmp_path / "external", FILES)
    layout = plan(list(FILES.items()), PIECE)
    manifest = Manifest.create(name="m", version="1", layout=layout, digests=hash_tree(model, layout),
                               key=signing.load_private_key(publisher_key))
    url = start_origin(procs, model, **origin)  # type: ignore[arg-type]
    settings = SeedboxSettings(tracker_url="http://127.0.0.1:9", passkey="unused", workdir=tmp_path / "seedbox",
                               fetch_retries=1)
    seeder = Seeder(settings, manifest, layout, b"", HttpSource(url, timeout))
    seeder.spool_dir.mkdir(parents=True)
    return seeder, url


@pytest.fixture
def seeders(tmp_path: Path, publisher_key: Path, procs: Procs) -> Iterator[Callable[..., tuple[Seeder, str]]]:
    """``make_seeder`` for this test; their sources' kept connections are closed after it."""
    made: list[Seeder] = []

    def make(timeout: float = 60.0, **origin: float) -> tuple[Seeder, str]:
        seeder, url = make_seeder(tmp_path, publisher_key, procs, timeout, **origin)
        made.append(seeder)
        return seeder, url

    yield make
    for seeder in made:
        seeder.source.close()


@pytest.fixture
def seeder_and_origin(seeders: Callable[..., tuple[Seeder, str]]) -> tuple[Seeder, str]:
    return seeders()


def sent(origin: str) -> int:
    return int(httpx.get(f"{origin}/_stats").json()["bytes_sent"])


@pytest.mark.parametrize(("spooled", "case"), [
    (0, "nothing spooled: the whole piece is read"),
    (100_000, "a read cut short: only the rest is asked for"),
    (PIECE - 1, "one byte missing"),
    (PIECE, "a whole piece spooled: the source is not asked at all"),
])
def test_a_piece_is_read_from_where_its_spool_stops(
        seeder_and_origin: tuple[Seeder, str], tmp_path: Path, spooled: int, case: str) -> None:
    seeder, origin = seeder_and_origin
    whole = (tmp_path / "external" / "w.safetensors").read_bytes()
    (seeder.spool_dir / "1").write_bytes(whole[PIECE:PIECE + spooled])
    assert seeder.fetch_checked(1) == whole[PIECE:2 * PIECE], case
    assert sent(origin) == PIECE - spooled, case
    assert seeder.stats.bad_pieces == 0


def test_a_spool_with_wrong_bytes_is_dropped_and_the_piece_read_whole(
        seeder_and_origin: tuple[Seeder, str], tmp_path: Path) -> None:
    seeder, origin = seeder_and_origin
    whole = (tmp_path / "external" / "w.safetensors").read_bytes()
    (seeder.spool_dir / "3").write_bytes(b"\0" * 500)  # the last piece, 1000 bytes long
    assert seeder.fetch_checked(3) == whole[3 * PIECE:]
    assert seeder.stats.bad_pieces == 1
    assert sent(origin) == 500 + 1000  # the rest of the bad spool, then the piece again


def test_the_spool_keeps_what_arrived_before_a_failed_read(
        seeder_and_origin: tuple[Seeder, str], tmp_path: Path) -> None:
    seeder, _ = seeder_and_origin
    whole = (tmp_path / "external" / "w.safetensors").read_bytes()
    # The file runs out 1000 bytes into the last piece.
    with open(tmp_path / "part", "wb") as out, pytest.raises(SourceError, match="returned 1000 bytes"):
        seeder.source.read_into("w.safetensors", 3 * PIECE, PIECE, out)
    kept = (tmp_path / "part").read_bytes()
    assert kept == whole[3 * PIECE:]


def test_a_source_that_stalls_mid_read_times_out_and_the_retry_asks_only_for_the_rest(
        tmp_path: Path, seeders: Callable[..., tuple[Seeder, str]]) -> None:
    seeder, origin = seeders(timeout=0.5, stall_every=2, stall_seconds=3)
    whole = (tmp_path / "external" / "w.safetensors").read_bytes()
    assert seeder.fetch_checked(0) == whole[:PIECE]  # request 1: whole
    assert seeder.fetch_checked(1) == whole[PIECE:2 * PIECE]  # request 2 stalls half way, 3 resumes
    time.sleep(3.5)  # the stalled request counts what it delivered once its sleep ends
    stats = httpx.get(f"{origin}/_stats").json()
    assert [start for _, start in stats["reads"]] == [0, PIECE, PIECE + PIECE // 2]
    assert stats["bytes_sent"] == 2 * PIECE  # each byte crossed once
    assert seeder.stats.bad_pieces == 0


@pytest.mark.parametrize(("spooled", "case"), [
    (0, "nothing spooled: every part read"),
    (10_000, "a part cut short: only its rest is asked for"),
    (PIECE // 4, "a whole part spooled: not asked again"),
])
def test_a_piece_read_in_parts_is_kept_in_its_parts_and_a_part_goes_on_from_where_it_stopped(
        seeder_and_origin: tuple[Seeder, str], tmp_path: Path, spooled: int, case: str) -> None:
    seeder, origin = seeder_and_origin
    seeder.settings.read_part_min = 1
    whole = (tmp_path / "external" / "w.safetensors").read_bytes()
    bounds = part_bounds(PIECE, seeder.settings.fetch_concurrency, min_part=1)
    assert len(bounds) == 4
    second = bounds[1][0]
    (seeder.spool_dir / f"1.{second}").write_bytes(whole[PIECE + second:PIECE + second + spooled])
    for part in bounds:
        seeder.spool_part(1, part)
    assert [(path.name, start, end) for path, start, end in seeder.spool_files(1)] == [
        (f"1.{start}", start, end) for start, end in bounds], "the web seed sends the parts as they are"
    assert seeder.spooled_bytes(1) == whole[PIECE:2 * PIECE], case
    assert sent(origin) == PIECE - spooled, case
    for part in bounds:  # read before a restart: the source is not asked again
        seeder.spool_part(1, part)
    assert sent(origin) == PIECE - spooled
