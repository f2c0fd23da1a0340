"""The signed manifest: what a model version is, piece by piece.

Each piece's digest is its BitTorrent v2 piece root (``common/hashing.py``): the SHA-256 merkle
root over its 16 KiB blocks, which is what the torrent's piece layers hold. A host checks once,
before downloading, that the torrent's piece layers are the manifest's digests
(``common.torrent.check_matches``); from then on libtorrent's check of every block is the check
against the signed manifest.

Canonical form: JSON with sorted keys, no spaces, UTF-8. ``root`` is the SHA-256 of the canonical
JSON of every field but ``root`` and ``signature``; ``signature`` is ed25519 over
``DOMAIN + root``. A manifest is trusted only if its root recomputes, its signature verifies and
its publisher key is one the reader trusts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from common import signing
from common.errors import ManifestError, SignatureError
from common.hashing import PieceDigest, verify_tree
from common.layout import Layout, check_name, plan

# 2: pieces are v2 piece roots (1 was the SHA-256 of each piece's bytes: re-publish such a version).
FORMAT = 2
DOMAIN = b"modeltorrent-manifest-v2\0"


class ManifestFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    path: str
    size: int = Field(ge=0)
    offset: int = Field(ge=0)


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int = FORMAT
    name: str
    version: str
    piece_size: int
    total_size: int = Field(ge=0)
    files: list[ManifestFile]
    pieces: list[str]  # hex v2 piece root of each piece (merkle root over its 16 KiB blocks)
    source: str | None = None
    created: str
    publisher: str  # hex ed25519 public key
    root: str = ""
    signature: str = ""

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        name: str,
        version: str,
        layout: Layout,
        digests: list[PieceDigest],
        key: Ed25519PrivateKey,
        source: str | None = None,
    ) -> Manifest:
        check_name("model name", name)
        check_name("version", version)
        unsigned = cls(
            name=name,
            version=version,
            piece_size=layout.piece_size,
            total_size=layout.total_size,
            files=[ManifestFile(path=f.path, size=f.size, offset=f.offset) for f in layout.files],
            pieces=[d.v2.hex() for d in digests],
            source=source,
            created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            publisher=signing.public_hex(key),
        )
        root = unsigned.compute_root()
        return unsigned.model_copy(
            update={"root": root, "signature": signing.sign(key, DOMAIN + bytes.fromhex(root))}
        )

    # -- canonical form -------------------------------------------------------------------------

    def body(self) -> bytes:
        """Canonical JSON of everything the root covers."""
        data = self.model_dump(exclude={"root", "signature"})
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def content_digest(self) -> str:
        """SHA-256 over what the bytes are (files, piece size, piece hashes), not when or by whom:
        two publishes of the same bytes have the same content digest."""
        data = {"files": [f.model_dump() for f in self.files], "piece_size": self.piece_size,
                "pieces": self.pieces}
        return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def compute_root(self) -> str:
        return hashlib.sha256(self.body()).hexdigest()

    def to_json(self) -> bytes:
        data = self.model_dump()
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Manifest:
        """Parse a manifest (no trust check). Raises ManifestError on malformed input."""
        try:
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ManifestError(f"malformed manifest: {where}: {first['msg']}") from exc

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    # -- trust ----------------------------------------------------------------------------------

    def layout(self) -> Layout:
        """The piece layout the file list implies. Raises ManifestError if it disagrees."""
        try:
            layout = plan([(f.path, f.size) for f in self.files], self.piece_size)
        except ManifestError:
            raise
        except Exception as exc:  # LayoutError: unsafe paths, bad piece size
            raise ManifestError(f"manifest {self.ref} has a bad layout: {exc}") from exc
        offsets = [(f.path, f.offset) for f in layout.files]
        if offsets != [(f.path, f.offset) for f in self.files]:
            raise ManifestError(f"manifest {self.ref}: files are out of order or offsets are wrong")
        if layout.num_pieces != len(self.pieces) or layout.total_size != self.total_size:
            raise ManifestError(f"manifest {self.ref}: piece count or total size is inconsistent")
        if any(len(p) != 64 for p in self.pieces):
            raise ManifestError(f"manifest {self.ref}: a piece hash is not 64 hex characters")
        return layout

    def verify(self, trusted: Iterable[str]) -> Layout:
        """Check root, signature, publisher and layout; return the layout.

        Raises SignatureError (tampered, or untrusted publisher) or ManifestError (inconsistent).
        """
        check_name("model name", self.name)
        check_name("version", self.version)
        if self.format != FORMAT:
            raise ManifestError(f"manifest format {self.format} is not supported (want {FORMAT})",
                                hint="re-publish the version with this modeltorrent")
        if self.compute_root() != self.root:
            raise SignatureError(
                f"manifest {self.ref} was changed: its root hash does not match its contents"
            )
        if self.publisher.lower() not in {k.lower() for k in trusted}:
            raise SignatureError(
                f"manifest {self.ref} is signed by an unknown publisher key {self.publisher[:16]}…",
                hint="add the publisher's .pub key to the trusted keys (--trust-key)",
            )
        signing.verify(self.publisher, DOMAIN + bytes.fromhex(self.root), self.signature)
        return self.layout()

    def piece_digests(self) -> list[bytes]:
        return [bytes.fromhex(p) for p in self.pieces]

    def verify_data(
        self, root: Path, *, progress: Callable[[int], None] | None = None
    ) -> None:
        """Check the files under ``root`` against every piece hash. Raises PieceMismatch."""
        verify_tree(root, self.layout(), self.piece_digests(), progress=progress)
