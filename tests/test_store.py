"""Staged activation: the ``current`` symlink only ever points at a complete version."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from client.store import ModelStore, boot_id
from common.errors import LayoutError, StoreError


def make_version(store: ModelStore, version: str, content: str = "x") -> None:
    path = store.version_dir("m", version)
    path.mkdir(parents=True)
    (path / "w.bin").write_text(content)


def test_activation_swaps_current_atomically_to_a_relative_target(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    make_version(store, "1", "one")
    make_version(store, "2", "two")
    store.activate("m", "1")
    assert (store.current("m") / "w.bin").read_text() == "one"
    inode_before = os.lstat(store.current("m")).st_ino
    store.activate("m", "2")
    assert os.readlink(store.current("m")) == "versions/2"
    assert (store.current("m") / "w.bin").read_text() == "two"
    assert os.lstat(store.current("m")).st_ino != inode_before  # replaced, not edited
    assert not list(store.model_dir("m").glob(".current.*"))


def test_activating_a_missing_version_leaves_current_alone(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    make_version(store, "1")
    store.activate("m", "1")
    with pytest.raises(FileNotFoundError):
        store.activate("m", "9")
    assert store.active_version("m") == "1"


def test_prune_keeps_the_newest_and_never_the_active(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    for v in ("1", "2", "3", "4"):
        make_version(store, v)
        os.utime(store.version_dir("m", v), (time.time() + int(v), time.time() + int(v)))
    store.activate("m", "1")  # oldest, but active
    removed = store.prune("m", keep=2)
    assert sorted(removed) == ["2"]
    assert sorted(p.name for p in (store.model_dir("m") / "versions").iterdir()) == ["1", "3", "4"]


@pytest.mark.parametrize("name,version", [("../x", "1"), ("m", "../../etc"), ("m", "a/b")])
def test_store_refuses_names_that_escape_its_root(tmp_path: Path, name: str, version: str) -> None:
    with pytest.raises(LayoutError):
        ModelStore(tmp_path).version_dir(name, version)


def test_verified_pieces_round_trip_and_an_old_resume_file_goes(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    assert store.load_verified("m", "1") == set()
    old = store.state_file("m", "1", "resume")
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"libtorrent resume data, as kept before")
    store.save_verified("m", "1", {3, 1, 2})
    assert store.load_verified("m", "1") == {1, 2, 3}
    assert not old.exists()


def test_verified_pieces_from_before_a_reboot_are_not_trusted(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.save_verified("m", "1", {1, 2})
    saved = store.state_file("m", "1", "verified.json")
    saved.write_text(saved.read_text().replace(boot_id(), "another-boot"))
    assert store.load_verified("m", "1") == set()
    saved.write_text("[1, 2]")  # the format before boots were recorded: not trusted either
    assert store.load_verified("m", "1") == set()


def test_rollback_returns_to_the_version_active_before(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    for v in ("1", "2", "3"):
        make_version(store, v, v)
    store.activate("m", "1")
    time.sleep(0.01)  # mtimes order activations
    store.activate("m", "3")
    assert store.rollback("m") == ("3", "1")
    assert os.readlink(store.current("m")) == "versions/1"
    assert store.versions("m")[0] == "1"
    assert store.rollback("m", to="2") == ("1", "2")
    assert (store.current("m") / "w.bin").read_text() == "2"


@pytest.mark.parametrize("versions,to,message", [
    ((), None, "no other version"), (("1",), None, "no other version"), (("1",), "7", "not on this host"),
])
def test_rollback_with_nothing_to_go_back_to_is_a_clear_error(
        tmp_path: Path, versions: tuple[str, ...], to: str | None, message: str) -> None:
    store = ModelStore(tmp_path)
    for v in versions:
        make_version(store, v)
        store.activate("m", v)
    with pytest.raises(StoreError, match=message) as exc:
        store.rollback("m", to)
    assert exc.value.hint and "versions kept" in exc.value.hint
    assert store.active_version("m") == (versions[-1] if versions else None)
