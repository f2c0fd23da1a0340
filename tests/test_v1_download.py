"""A v1 torrent's SHA-1s are not signed: before a v1 download is activated, the client checks it
against the manifest's piece roots, and a download that is not the publisher's is discarded."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.fetch import Fetcher
from client.settings import ClientSettings
from common import signing
from common.errors import TorrentMismatch
from common.hashing import hash_tree
from common.layout import plan
from common.manifest import Manifest
from tests.conftest import write_model
from tracker.api_client import TrackerClient

PS = 64 * 1024
FILES = {"a.safetensors": 3 * PS + 17, "config.json": 99}


@pytest.fixture
def fetcher(tmp_path: Path) -> Fetcher:
    settings = ClientSettings(tracker_url="http://127.0.0.1:9", passkey="k", root=tmp_path / "root")  # type: ignore[arg-type]
    return Fetcher(settings, TrackerClient("http://127.0.0.1:9"))


def manifest_of(tmp_path: Path) -> tuple[Manifest, Path]:
    model = write_model(tmp_path / "model", FILES)
    layout = plan(list(FILES.items()), PS)
    signing.generate_key(tmp_path / "k")
    manifest = Manifest.create(name="m", version="1", layout=layout, digests=hash_tree(model, layout),
                               key=signing.load_private_key(tmp_path / "k"))
    return manifest, model


def test_the_publishers_bytes_pass(tmp_path: Path, fetcher: Fetcher) -> None:
    manifest, model = manifest_of(tmp_path)
    fetcher._verify_v1(manifest, model)
    assert model.is_dir()


def test_bytes_a_v1_torrent_let_through_that_are_not_the_manifests_are_refused_and_discarded(
        tmp_path: Path, fetcher: Fetcher) -> None:
    manifest, model = manifest_of(tmp_path)
    staging = fetcher.store.staging("m", "1")
    staging.parent.mkdir(parents=True)
    model.rename(staging)
    data = bytearray((staging / "a.safetensors").read_bytes())
    data[2 * PS + 5] ^= 1  # what a torrent whose SHA-1s are of other bytes would have let through
    (staging / "a.safetensors").write_bytes(bytes(data))
    fetcher.store.save_verified("m", "1", {0, 1, 2, 3})
    with pytest.raises(TorrentMismatch, match="piece 2 .* not the signed manifest's|not the signed manifest's"):
        fetcher._verify_v1(manifest, staging)
    assert not staging.exists()  # nothing of it is kept, or taken for verified on a retry
    assert fetcher.store.load_verified("m", "1") == set()
    assert fetcher.store.active_version("m") is None
