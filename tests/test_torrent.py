"""Torrents built from one hashing pass equal libtorrent's own, and match their manifest."""

from __future__ import annotations

from pathlib import Path

import libtorrent as lt
import pytest

from common import signing, torrent
from common.errors import TorrentMismatch
from common.hashing import hash_tree
from common.layout import plan
from common.manifest import Manifest
from tests.conftest import write_model

PS = 64 * 1024

CASES = {
    "one small file": {"w.bin": 5},
    "one file of exactly one piece": {"w.bin": PS},
    "multi-piece files, nested, empty": {
        "a.bin": 3 * PS + 100,
        "sub/b.bin": 20_000,
        "c.bin": 2 * PS,
        "z.bin": 5,
        "empty.txt": 0,
        "a-b/x.bin": 7 * PS + 1,
    },
    "five pieces (odd merkle width)": {"m.safetensors": 5 * PS - 3},
}


def libtorrent_reference(model: Path, piece_size: int, torrent_format: str = "hybrid") -> lt.info_hash_t:
    files = [
        lt.create_file_entry(f"{model.name}/{p.relative_to(model).as_posix()}", p.stat().st_size)
        for p in sorted(model.rglob("*")) if p.is_file()
    ]
    flags = {"v2": lt.create_torrent.v2_only, "hybrid": 0,
             # v1 with every file padded to a piece boundary, as hybrid lays them out
             "v1": lt.create_torrent.v1_only | lt.create_torrent.canonical_files}[torrent_format]
    ct = lt.create_torrent(files, piece_size, flags)
    ct.set_priv(True)
    lt.set_piece_hashes(ct, str(model.parent))
    return lt.torrent_info(ct.generate()).info_hashes()


def build_from_tree(model: Path, piece_size: int, torrent_format: torrent.Format = "hybrid") -> tuple[bytes, list]:
    layout = plan(
        [(p.relative_to(model).as_posix(), p.stat().st_size) for p in model.rglob("*") if p.is_file()],
        piece_size,
    )
    digests = hash_tree(model, layout, v1=torrent_format in ("hybrid", "v1"))
    return torrent.build(layout, digests, model.name, torrent_format=torrent_format), digests


@pytest.mark.parametrize("torrent_format", torrent.FORMATS)
@pytest.mark.parametrize("files", CASES.values(), ids=CASES.keys())
def test_should_equal_libtorrent_info_hashes_when_built_from_one_pass(
        tmp_path: Path, files: dict, torrent_format: torrent.Format) -> None:
    model = write_model(tmp_path / "m", files)
    built, _ = build_from_tree(model, PS, torrent_format)
    ours = lt.torrent_info(built).info_hashes()
    ref = libtorrent_reference(model, PS, torrent_format)
    assert ours.has_v1() == ref.has_v1() == (torrent_format in ("hybrid", "v1"))
    assert ours.has_v2() == ref.has_v2() == (torrent_format in ("hybrid", "v2"))
    assert ours.v1.to_bytes() == ref.v1.to_bytes()
    assert ours.v2.to_bytes() == ref.v2.to_bytes()
    assert torrent.format_of(built) == torrent_format


def test_should_keep_info_hashes_when_announce_is_rewritten(tmp_path: Path) -> None:
    model = write_model(tmp_path / "m", CASES["multi-piece files, nested, empty"])
    built, _ = build_from_tree(model, PS)
    rewritten = torrent.with_announce(built, "http://t:1/announce?passkey=abc")
    assert torrent.info_hashes(rewritten) == torrent.info_hashes(built)
    assert lt.bdecode(rewritten)[b"announce"] == b"http://t:1/announce?passkey=abc"
    assert b"announce-list" not in lt.bdecode(rewritten)
    pair = torrent.with_announce(built, ["https://a/announce?passkey=k", "https://b/announce?passkey=k"])
    assert torrent.info_hashes(pair) == torrent.info_hashes(built)
    assert lt.bdecode(pair)[b"announce"] == b"https://a/announce?passkey=k"
    assert lt.bdecode(pair)[b"announce-list"] == [[b"https://a/announce?passkey=k"], [b"https://b/announce?passkey=k"]]


def test_should_refuse_a_torrent_that_disagrees_with_its_manifest(tmp_path: Path) -> None:
    key = tmp_path / "k"
    signing.generate_key(key)
    model = write_model(tmp_path / "m", {"a.bin": 3 * PS, "b.bin": 10})
    built, digests = build_from_tree(model, PS)
    layout = plan([("a.bin", 3 * PS), ("b.bin", 10)], PS)
    manifest = Manifest.create(
        name="m", version="1", layout=layout, digests=digests, key=signing.load_private_key(key)
    )
    torrent.check_matches(built, manifest)
    (model / "b.bin").write_bytes(b"x" * 11)
    other, _ = build_from_tree(model, PS)
    with pytest.raises(TorrentMismatch, match="files disagree"):
        torrent.check_matches(other, manifest)
    with pytest.raises(TorrentMismatch, match="not a valid torrent"):
        torrent.check_matches(b"d4:infoi1ee", manifest)


def test_a_torrent_of_another_version_is_refused_and_one_without_a_version_is_taken(tmp_path: Path) -> None:
    key = tmp_path / "k"
    signing.generate_key(key)
    layout = plan([("a.bin", 3 * PS), ("b.bin", 10)], PS)
    model = write_model(tmp_path / "m", {"a.bin": 3 * PS, "b.bin": 10})
    _, digests = build_from_tree(model, PS)
    manifest = Manifest.create(name="m", version="7", layout=layout, digests=digests,
                               key=signing.load_private_key(key))
    torrent.check_matches(torrent.build(layout, digests, "m", version="7"), manifest)
    torrent.check_matches(torrent.build(layout, digests, "m"), manifest)
    with pytest.raises(TorrentMismatch, match="version '8'"):
        torrent.check_matches(torrent.build(layout, digests, "m", version="8"), manifest)


def test_should_refuse_a_torrent_that_turns_a_manifest_file_into_a_symlink(tmp_path: Path) -> None:
    """BEP 47 symlinks: same paths and sizes as the manifest, but libtorrent would create a link."""
    key = tmp_path / "k"
    signing.generate_key(key)
    files = {"a.bin": 3 * PS, "empty.txt": 0}
    model = write_model(tmp_path / "m", files)
    built, digests = build_from_tree(model, PS)
    manifest = Manifest.create(name="m", version="1", layout=plan(list(files.items()), PS),
                               digests=digests, key=signing.load_private_key(key))
    torrent.check_matches(built, manifest)
    meta = lt.bdecode(built)
    target = [b"..", b"..", b"..", b"etc", b"passwd"]
    for entry in meta[b"info"][b"files"]:
        if entry[b"path"] == [b"empty.txt"]:
            entry.update({b"attr": b"l", b"symlink path": target})
    meta[b"info"][b"file tree"][b"empty.txt"][b""].update({b"attr": b"l", b"symlink path": target})
    with pytest.raises(TorrentMismatch, match="is a symlink"):
        torrent.check_matches(lt.bencode(meta), manifest)


@pytest.mark.parametrize("files", CASES.values(), ids=CASES.keys())
def test_the_manifests_piece_hashes_are_libtorrents_own_v2_hashes(tmp_path: Path, files: dict) -> None:
    """What the manifest signs is what libtorrent checks every block against: per file, the piece
    layer of a file of several pieces, the pieces root of a file of one."""
    model = write_model(tmp_path / "m", files)
    layout = plan([(p.relative_to(model).as_posix(), p.stat().st_size) for p in model.rglob("*") if p.is_file()], PS)
    ours = [d.v2 for d in hash_tree(model, layout)]
    entries = [lt.create_file_entry(f"m/{f.path}", f.size) for f in layout.files]
    ct = lt.create_torrent(entries, PS, lt.create_torrent.v2_only)
    lt.set_piece_hashes(ct, str(model.parent))
    meta = ct.generate()
    theirs = []
    for entry in layout.files:
        if not entry.size:
            continue
        node = meta[b"info"][b"file tree"]
        for part in entry.path.split("/"):
            node = node[part.encode()]
        root = node[b""][b"pieces root"]
        layer = meta.get(b"piece layers", {}).get(root, root)
        theirs += [layer[i:i + 32] for i in range(0, len(layer), 32)]
    assert ours == theirs


def signed(tmp_path: Path, files: dict, torrent_format: torrent.Format = "hybrid") -> tuple[Path, bytes, Manifest]:
    key = tmp_path / "k"
    signing.generate_key(key)
    model = write_model(tmp_path / "m", files)
    built, digests = build_from_tree(model, PS, torrent_format)
    manifest = Manifest.create(name="m", version="1", layout=plan(list(files.items()), PS), digests=digests,
                               key=signing.load_private_key(key))
    torrent.check_matches(built, manifest)
    return model, built, manifest


@pytest.mark.parametrize("torrent_format", ["v2", "hybrid"])
def test_should_refuse_a_torrent_whose_v2_hashes_are_not_the_manifests(
        tmp_path: Path, torrent_format: torrent.Format) -> None:
    """Same files and sizes, other bytes: libtorrent would accept those bytes, the manifest not."""
    model, _, manifest = signed(tmp_path, {"a.bin": 3 * PS, "b.bin": 10}, torrent_format)
    (model / "a.bin").write_bytes(b"y" * 3 * PS)
    other, _ = build_from_tree(model, PS, torrent_format)
    with pytest.raises(TorrentMismatch, match="v2 root of 'a.bin' is not the manifest's"):
        torrent.check_matches(other, manifest)


@pytest.mark.parametrize("torrent_format", ["v2", "hybrid"])
@pytest.mark.parametrize("change", ["drop the piece layers", "change one hash of a layer"])
def test_should_refuse_a_torrent_whose_piece_layer_disagrees(
        tmp_path: Path, change: str, torrent_format: torrent.Format) -> None:
    _, built, manifest = signed(tmp_path, {"a.bin": 3 * PS, "b.bin": 10}, torrent_format)
    meta = lt.bdecode(built)
    if change == "drop the piece layers":
        meta[b"piece layers"] = {}
    else:
        (root, layer), = meta[b"piece layers"].items()
        meta[b"piece layers"][root] = layer[:32] + bytes(32) + layer[64:]
    with pytest.raises(TorrentMismatch, match="piece layer of 'a.bin' disagrees|not a valid torrent"):
        torrent.check_matches(lt.bencode(meta), manifest)


def test_a_v1_torrent_must_lay_pieces_out_as_the_manifest_does(tmp_path: Path) -> None:
    """A v1 torrent carries no hash the manifest signs (its download is verified before activation),
    but its pieces must be the manifest's pieces: files padded to piece boundaries."""
    files = {"a.bin": 3 * PS + 5, "b.bin": PS}
    model, _, manifest = signed(tmp_path, files)
    ours, _ = build_from_tree(model, PS, "v1")
    assert torrent.check_matches(ours, manifest).format == "v1"
    entries = [lt.create_file_entry(f"m/{name}", size) for name, size in files.items()]
    ct = lt.create_torrent(entries, PS, lt.create_torrent.v1_only)  # unpadded: pieces straddle files
    ct.set_priv(True)
    lt.set_piece_hashes(ct, str(model.parent))
    with pytest.raises(TorrentMismatch, match="disagree"):
        torrent.check_matches(lt.bencode(ct.generate()), manifest)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # rename_file() and files(): what add_params uses
@pytest.mark.parametrize("torrent_format", torrent.FORMATS)
def test_a_model_of_one_file_is_checked_and_lands_where_its_manifest_says(
        tmp_path: Path, torrent_format: torrent.Format) -> None:
    """libtorrent names a v2 torrent of one file after the file and drops the model's folder."""
    from common.lt_session import add_params

    _, built, manifest = signed(tmp_path, {"w.safetensors": 3 * PS + 7}, torrent_format)
    params = add_params(built, str(tmp_path / "save"))
    files = params.ti.files()  # the renamed files (layout() holds the originals)
    paths = [files.file_path(i) for i in range(files.num_files())
             if not files.file_flags(i) & lt.file_storage.flag_pad_file]
    assert paths == ["w.safetensors"]
    assert manifest.files[0].path == "w.safetensors"


@pytest.mark.parametrize("torrent_format", ["v2", "hybrid", "v1"])
def test_each_stripe_is_its_own_swarm_over_the_manifests_files(tmp_path: Path,
                                                               torrent_format: torrent.Format) -> None:
    _, built, manifest = signed(tmp_path, {"a.bin": 5 * PS + 3, "b.bin": 2 * PS}, torrent_format)
    stripes = [torrent.stripe_torrent(built, k, 3) for k in range(3)]
    hashes = {torrent.info_hashes(t) for t in [built, *stripes]}
    assert len(hashes) == 4  # each stripe a swarm of its own, none the whole torrent's
    assert stripes == [torrent.stripe_torrent(built, k, 3) for k in range(3)]  # what the tracker derives too
    for t in stripes:
        torrent.check_matches(t, manifest)  # the same files, pieces and hashes
    n = len(manifest.pieces)
    assert sorted(i for k in range(3) for i in torrent.stripe_pieces(n, k, 3)) == list(range(n))
    assert [p > 0 for p in torrent.stripe_priorities(n, 1, 3)] == [i % 3 == 1 for i in range(n)]
    with pytest.raises(ValueError):
        torrent.stripe_torrent(built, 3, 3)
