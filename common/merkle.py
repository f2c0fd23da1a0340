"""BitTorrent v2 (BEP 52) merkle hashes over 16 KiB blocks, for building hybrid torrents."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from common.layout import BLOCK_SIZE

ZERO = b"\0" * 32


@lru_cache(maxsize=64)
def zero_root(width: int) -> bytes:
    """Root of a subtree of ``width`` leaves that are all zero hashes (``width`` a power of two)."""
    node = ZERO
    while width > 1:
        node = hashlib.sha256(node + node).digest()
        width //= 2
    return node


def root(leaves: list[bytes], width: int, pad: bytes = ZERO) -> bytes:
    """Merkle root of ``leaves`` padded with ``pad`` to ``width`` (a power of two) leaves."""
    layer = leaves + [pad] * (width - len(leaves))
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
    return layer[0]


def next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p *= 2
    return p


def piece_hash(data: bytes | memoryview, piece_size: int, file_size: int) -> bytes:
    """v2 hash of one piece of a file: the root of its block subtree.

    A file of at most one piece has no piece layer: its tree is as wide as the file needs, and this
    hash is the file's ``pieces root`` itself.
    """
    mv = memoryview(data)
    leaves = [hashlib.sha256(mv[i : i + BLOCK_SIZE]).digest() for i in range(0, len(mv), BLOCK_SIZE)]
    width = piece_size // BLOCK_SIZE if file_size > piece_size else next_pow2(len(leaves))
    return root(leaves, width)


def file_root(piece_hashes: list[bytes], piece_size: int) -> bytes:
    """``pieces root`` of a file from its piece-layer hashes."""
    if len(piece_hashes) == 1:
        return piece_hashes[0]
    return root(piece_hashes, next_pow2(len(piece_hashes)), zero_root(piece_size // BLOCK_SIZE))
