"""Private torrents built from a layout's digests, without reading data again: ``v2`` (BEP 52),
``hybrid`` (v1 + v2, for clients that speak only v1) or ``v1`` (BEP 3 alone, for clients that
cannot read v2's file tree at all: transmission 3.00, aria2 1.36).

A v1 torrent carries SHA-1 piece hashes, which the signed manifest does not: libtorrent's checks
then guard the transfer, not the manifest, so a client verifies a v1 download against the
manifest's piece roots before it activates it (one more read and hash of every byte), and the
seedbox checks every piece it reads before it seeds any (no streaming).

libtorrent's Python bindings cannot take precomputed v2 hashes, so the metainfo is assembled here
exactly as libtorrent would (BEP 3 + BEP 52, hybrid with pad files after every file); a test pins
that the info hashes equal libtorrent's own ``set_piece_hashes`` result for both formats.

Which format costs what, and which stock clients each serves: README, "Torrent formats".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import libtorrent as lt

from common import merkle
from common.errors import TorrentMismatch
from common.hashing import PieceDigest
from common.layout import Layout
from common.manifest import Manifest

CREATOR = "modeltorrent"
Format = Literal["v2", "hybrid", "v1"]
FORMATS: tuple[Format, ...] = ("v2", "hybrid", "v1")
# v2 by default: each byte is hashed once per host (SHA-256 blocks). A hybrid torrent makes every
# host hash SHA-1 too: in the data-plane benchmark (docs/dataplane-report.md) that cost a client
# about 0.5 CPU-s per GiB more and publish a third of its rate; it is for fleets with v1-only clients.
DEFAULT_FORMAT: Format = "v2"


@dataclass(frozen=True)
class InfoHashes:
    v1: str | None  # 40 hex chars, SHA-1 of the info dict (hybrid and v1)
    v2: str | None  # 64 hex chars, SHA-256 of the info dict (v2 and hybrid)

    @property
    def v2_truncated(self) -> str | None:
        """What a v2 peer sends a tracker as ``info_hash`` (BEP 52): the first 20 bytes."""
        return self.v2[:40] if self.v2 else None

    @property
    def format(self) -> Format:
        return "hybrid" if self.v1 and self.v2 else "v1" if self.v1 else "v2"


VERSION_KEY = b"modeltorrent version"
SSL_CERT_KEY = b"ssl-cert"  # libtorrent's: the root certificate of an SSL torrent, in the info dict


def build(layout: Layout, digests: list[PieceDigest], name: str, *, version: str = "", comment: str = "",
          torrent_format: Format = DEFAULT_FORMAT, peer_ca: str | None = None) -> bytes:
    """Bencoded private torrent whose top folder is ``name``; ``hybrid`` and ``v1`` need the
    digests' SHA-1 (``hash_tree(..., v1=True)``).

    ``version`` goes into the info dict, so that each version of a model is a swarm of its own even
    when its bytes are another version's (the info hashes would be the same otherwise; hosts that
    hold the other version copy its pieces instead of downloading them). BitTorrent clients hash
    the info dict as it is and ignore keys they do not know."""
    hybrid = torrent_format in ("hybrid", "v1")  # the v1 parts: files with their padding, SHA-1s
    v1_files: list[dict[bytes, Any]] = []
    tree: dict[bytes, Any] = {}
    layers: dict[bytes, bytes] = {}
    for entry in layout.files:
        parts = [p.encode() for p in entry.path.split("/")]
        v1_files.append({b"length": entry.size, b"path": parts})
        leaf: dict[bytes, Any] = {b"length": entry.size}
        if entry.size:
            hashes = [digests[i].v2 for i in range(entry.first_piece, entry.first_piece + entry.num_pieces)]
            leaf[b"pieces root"] = merkle.file_root(hashes, layout.piece_size)
            if entry.num_pieces > 1:
                layers[leaf[b"pieces root"]] = b"".join(hashes)
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = {b"": leaf}
        pad = -entry.size % layout.piece_size if layout.padded else 0
        if pad and hybrid:
            v1_files.append({b"attr": b"p", b"length": pad, b"path": [b".pad", str(pad).encode()]})
    info: dict[bytes, Any] = {
        b"file tree": tree,
        b"meta version": 2,
        b"name": name.encode(),
        b"piece length": layout.piece_size,
        b"private": 1,
    }
    if version:
        info[VERSION_KEY] = version.encode()
    if peer_ca:
        info[SSL_CERT_KEY] = peer_ca.encode()
    if hybrid:
        if not all(d.sha1 for d in digests):
            raise ValueError(f"a {torrent_format} torrent needs the pieces' SHA-1 (hash_tree(..., v1=True))")
        info |= {b"files": v1_files, b"pieces": b"".join(d.sha1 for d in digests)}
    if torrent_format == "v1":
        del info[b"file tree"], info[b"meta version"]
    meta: dict[bytes, Any] = {
        b"created by": CREATOR.encode(),
        b"creation date": int(time.time()),
        b"info": info,
    }
    if torrent_format != "v1":
        meta[b"piece layers"] = layers
    if comment:
        meta[b"comment"] = comment.encode()
    return bytes(lt.bencode(meta))


def peer_ca(torrent: bytes) -> str | None:
    """The root certificate an SSL torrent carries (PEM), or None."""
    meta = cast(dict[bytes, Any], lt.bdecode(torrent))
    cert = meta.get(b"info", {}).get(SSL_CERT_KEY) if isinstance(meta, dict) else None
    return cert.decode() if isinstance(cert, bytes) and cert else None


def parse(torrent: bytes) -> lt.torrent_info:
    """Raises TorrentMismatch if ``torrent`` is not a valid torrent file."""
    try:
        return lt.torrent_info(torrent)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise TorrentMismatch(f"not a valid torrent file: {exc}") from exc


def info_hashes(torrent: bytes) -> InfoHashes:
    """Raises TorrentMismatch if ``torrent`` is not a valid torrent file."""
    ih = parse(torrent).info_hashes()
    return InfoHashes(v1=ih.v1.to_bytes().hex() if ih.has_v1() else None,
                      v2=ih.v2.to_bytes().hex() if ih.has_v2() else None)


def format_of(torrent: bytes) -> Format:
    return info_hashes(torrent).format


def check_matches(torrent: bytes, manifest: Manifest) -> InfoHashes:
    """Raise TorrentMismatch unless ``torrent`` lays out exactly the manifest's files and pieces."""
    ti = parse(torrent)
    hashes = info_hashes(torrent)
    if not ti.priv():
        raise TorrentMismatch("torrent is not private")
    info = cast(dict[bytes, Any], lt.bdecode(torrent)).get(b"info", {})
    name = info.get(b"name", b"").decode(errors="replace") if isinstance(info, dict) else ""
    if name != manifest.name:  # the info dict's own name: a v2 torrent of one file is named after it
        raise TorrentMismatch(f"torrent name {name!r} is not the model name {manifest.name!r}")
    version = info.get(VERSION_KEY) if isinstance(info, dict) else None
    if version is not None and version != manifest.version.encode():
        raise TorrentMismatch(f"torrent is of version {version.decode(errors='replace')!r}, "
                              f"the manifest of {manifest.version!r}")
    if ti.piece_length() != manifest.piece_size or ti.num_pieces() != len(manifest.pieces):
        raise TorrentMismatch(
            f"torrent pieces ({ti.num_pieces()} x {ti.piece_length()}) disagree with the manifest "
            f"({len(manifest.pieces)} x {manifest.piece_size})"
        )
    fs = ti.layout()
    # libtorrent lays out a v2 torrent of one file as that file alone, without the model's folder.
    real = [i for i in range(fs.num_files()) if not fs.file_flags(i) & lt.file_storage.flag_pad_file]
    lone = hashes.v1 is None and len(real) == 1 and "/" not in fs.file_path(real[0]).replace("\\", "/")
    prefix = "" if lone else manifest.name + "/"
    files = []
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        path = fs.file_path(i).replace("\\", "/")
        if fs.file_flags(i) & lt.file_storage.flag_symlink:
            # BEP 47: libtorrent would create the link on the host; a manifest holds real files only
            raise TorrentMismatch(f"torrent file {path!r} is a symlink")
        if not path.startswith(prefix):
            raise TorrentMismatch(f"torrent file {path!r} is outside the model folder")
        files.append((path[len(prefix):], fs.file_size(i), fs.file_offset(i)))
    expected = [(f.path, f.size, f.offset) for f in manifest.files]
    if files != expected:
        raise TorrentMismatch("torrent files disagree with the manifest's files")
    if hashes.v2:  # a v1 torrent has no hashes the manifest signs: its download is verified after
        _check_piece_layers(torrent, manifest)
    return hashes


def _check_piece_layers(torrent: bytes, manifest: Manifest) -> None:
    """Raise TorrentMismatch unless every file's v2 hashes are the manifest's piece roots: its
    ``pieces root`` in the info dict (which the info hash covers) and its piece layer. libtorrent
    checks every block it receives against these, so this one comparison makes that check the
    check against the signed manifest."""
    meta = cast(dict[bytes, Any], lt.bdecode(torrent))
    tree = meta.get(b"info", {}).get(b"file tree")
    layers = meta.get(b"piece layers", {})
    if not isinstance(tree, dict) or not isinstance(layers, dict):
        raise TorrentMismatch("torrent has no v2 file tree or piece layers")
    layout = manifest.layout()
    digests = manifest.piece_digests()
    for entry in layout.files:
        if not entry.size:
            continue
        node: Any = tree
        for part in entry.path.split("/"):
            node = node.get(part.encode()) if isinstance(node, dict) else None
        leaf = node.get(b"") if isinstance(node, dict) else None
        root = leaf.get(b"pieces root") if isinstance(leaf, dict) else None
        hashes = digests[entry.first_piece:entry.first_piece + entry.num_pieces]
        if root != merkle.file_root(hashes, layout.piece_size):
            raise TorrentMismatch(f"torrent's v2 root of {entry.path!r} is not the manifest's")
        if entry.num_pieces > 1 and layers.get(root) != b"".join(hashes):
            raise TorrentMismatch(f"torrent's piece layer of {entry.path!r} disagrees with the manifest's pieces")


def with_announce(torrent: bytes, url: str | Sequence[str]) -> bytes:
    """The same torrent (same info hashes) announcing to ``url`` only; several URLs (a tracker
    failover pair) each in a tier of its own (BEP 12): a client announces to the first tier and
    moves to the next when it fails."""
    urls = [url] if isinstance(url, str) else list(url)
    meta = cast(dict[bytes, Any], lt.bdecode(torrent))
    meta[b"announce"] = urls[0].encode()
    meta.pop(b"announce-list", None)
    if len(urls) > 1:
        meta[b"announce-list"] = [[u.encode()] for u in urls]
    return bytes(lt.bencode(meta))


# -- stripes ------------------------------------------------------------------------------------

STRIPE_KEY = b"modeltorrent stripe"
MAX_STRIPES = 64  # a host runs one torrent per stripe; beyond a rack's size a stripe gains nothing


def stripe_pieces(num_pieces: int, stripe: int, stripes: int) -> list[int]:
    """The pieces stripe ``stripe`` of ``stripes`` carries: every ``stripes``-th from ``stripe``.
    Interleaved, not in blocks: the seedbox reads in index order, so every stripe's gateway gets
    its share of the ingress all the time, not one after the other."""
    return list(range(stripe, num_pieces, stripes))


def stripe_priorities(num_pieces: int, stripe: int, stripes: int) -> list[int]:
    """libtorrent piece priorities for stripe ``stripe``: its pieces wanted (4, the default), the
    rest not at all (0)."""
    return [4 if i % stripes == stripe else 0 for i in range(num_pieces)]


def stripe_torrent(torrent: bytes, stripe: int, stripes: int) -> bytes:
    """Stripe ``stripe`` of ``stripes`` of ``torrent``: the same files, piece size and hashes (what
    makes it the signed manifest's, checked once on ``torrent``), with the stripe named in the info
    dict so that its info hash, and so its swarm, is its own. Deterministic: the tracker and every
    host derive the same info hash from the registered torrent. Raises ValueError for a stripe out
    of range."""
    if not 0 <= stripe < stripes <= MAX_STRIPES:
        raise ValueError(f"stripe {stripe} of {stripes} (at most {MAX_STRIPES} stripes)")
    meta = cast(dict[bytes, Any], lt.bdecode(torrent))
    meta[b"info"][STRIPE_KEY] = f"{stripe}/{stripes}".encode()
    return bytes(lt.bencode(meta))
