"""The signed manifest: canonical form, trust, tamper detection, data verification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import signing
from common.errors import ManifestError, PieceMismatch, SignatureError
from common.hashing import hash_tree
from common.layout import plan
from common.manifest import Manifest
from tests.conftest import write_model

PS = 64 * 1024


def make(tmp_path: Path, key_path: Path, files: dict[str, int] | None = None) -> tuple[Manifest, Path]:
    files = files or {"a.safetensors": 3 * PS + 7, "sub/b.safetensors": PS, "config.json": 100}
    model = write_model(tmp_path / "model", files)
    layout = plan(list(files.items()), PS)
    manifest = Manifest.create(name="m", version="1", layout=layout, digests=hash_tree(model, layout),
                               key=signing.load_private_key(key_path), source=model.as_uri())
    return manifest, model


def test_should_verify_when_signed_by_a_trusted_key(tmp_path: Path, publisher_key: Path) -> None:
    manifest, model = make(tmp_path, publisher_key)
    layout = manifest.verify([manifest.publisher])
    assert layout.num_pieces == len(manifest.pieces) == 4 + 1 + 1
    manifest.verify_data(model)


def test_should_round_trip_through_canonical_json(tmp_path: Path, publisher_key: Path) -> None:
    manifest, _ = make(tmp_path, publisher_key)
    raw = manifest.to_json()
    again = Manifest.from_json(raw)
    assert again == manifest and again.to_json() == raw
    assert raw == json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("field,value", [
    ("version", "2"), ("total_size", 1), ("source", "http://evil/"), ("piece_size", 2 * PS),
], ids=["version", "total_size", "source", "piece_size"])
def test_should_refuse_a_manifest_changed_after_signing(tmp_path: Path, publisher_key: Path,
                                                        field: str, value: object) -> None:
    manifest, _ = make(tmp_path, publisher_key)
    doc = json.loads(manifest.to_json())
    doc[field] = value
    tampered = Manifest.from_json(json.dumps(doc))
    with pytest.raises(SignatureError, match="changed"):
        tampered.verify([manifest.publisher])


def test_should_refuse_a_piece_hash_changed_after_signing(tmp_path: Path, publisher_key: Path) -> None:
    manifest, _ = make(tmp_path, publisher_key)
    pieces = list(manifest.pieces)
    pieces[2] = "0" * 64
    with pytest.raises(SignatureError):
        manifest.model_copy(update={"pieces": pieces}).verify([manifest.publisher])


def test_should_refuse_a_resigned_manifest_from_an_unknown_publisher(tmp_path: Path, publisher_key: Path) -> None:
    manifest, _ = make(tmp_path, publisher_key)
    other = tmp_path / "other.key"
    signing.generate_key(other)
    forged, _ = make(tmp_path / "f", other)
    with pytest.raises(SignatureError, match="unknown publisher"):
        forged.verify([manifest.publisher])


def test_should_refuse_a_bad_signature(tmp_path: Path, publisher_key: Path) -> None:
    manifest, _ = make(tmp_path, publisher_key)
    bad = manifest.model_copy(update={"signature": "00" * 64})
    with pytest.raises(SignatureError, match="signature is invalid"):
        bad.verify([manifest.publisher])


def test_should_name_the_first_bad_piece_when_data_is_changed(tmp_path: Path, publisher_key: Path) -> None:
    manifest, model = make(tmp_path, publisher_key)
    target = model / "a.safetensors"
    data = bytearray(target.read_bytes())
    data[2 * PS + 5] ^= 0xFF  # piece 2 of the first file (config.json is piece 0 -> this is piece 3)
    data[3 * PS + 1] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(PieceMismatch) as info:
        manifest.verify_data(model)
    first_piece_of_a = manifest.layout().files[0].first_piece
    assert manifest.files[0].path == "a.safetensors"
    assert info.value.index == first_piece_of_a + 2
    assert info.value.path == "a.safetensors"
    assert info.value.expected == manifest.pieces[info.value.index]


@pytest.mark.parametrize("raw,match", [
    (b"{}", "malformed manifest"),
    (b"not json", "malformed manifest"),
], ids=["empty object", "not json"])
def test_should_refuse_malformed_manifests(raw: bytes, match: str) -> None:
    with pytest.raises(ManifestError, match=match):
        Manifest.from_json(raw)


def test_should_refuse_path_traversal_even_when_signed(tmp_path: Path, publisher_key: Path) -> None:
    manifest, _ = make(tmp_path, publisher_key)
    files = [f.model_copy(update={"path": "../../etc/" + f.path}) if i == 0 else f
             for i, f in enumerate(manifest.files)]
    key = signing.load_private_key(publisher_key)
    evil = manifest.model_copy(update={"files": files, "root": "", "signature": ""})
    root = evil.compute_root()
    from common.manifest import DOMAIN
    evil = evil.model_copy(update={"root": root, "signature": signing.sign(key, DOMAIN + bytes.fromhex(root))})
    with pytest.raises(ManifestError, match="unsafe file path"):
        evil.verify([manifest.publisher])
