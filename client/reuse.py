"""Incremental updates: pieces of a new version already held in another version on this host.

A fine-tune shares most pieces with its base, so before downloading a version the client looks
for pieces with the same piece root (the v2 merkle root of their blocks) in the versions it
already holds and copies them locally.
``plan`` (pure) says where each piece can be found; ``copy`` reads it there, checks it against
the new version's signed manifest and writes it into the download. A donor's manifest only says
where to look: every copied byte is hashed against the new manifest, so a damaged or altered
donor costs a download, never a wrong piece.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from common.hashing import piece_root
from common.layout import Layout

log = logging.getLogger("modeltorrent.client")


@dataclass(frozen=True)
class Donor:
    """A version on this host: where its files are, how they lie on pieces, and the digests."""

    root: Path
    layout: Layout
    digests: Sequence[bytes]


@dataclass(frozen=True)
class Source:
    path: Path
    offset: int
    length: int


def plan(layout: Layout, digests: Sequence[bytes], donors: Iterable[Donor],
         skip: Iterable[int] = ()) -> dict[int, Source]:
    """For each piece of the new version (``layout``, ``digests``) not in ``skip``, where a donor
    holds the same bytes (same digest and length), the first donor first."""
    found: dict[tuple[bytes, int], Source] = {}
    for donor in donors:
        for span in donor.layout.pieces:
            key = (donor.digests[span.index], span.length)
            if key not in found:
                path = donor.root / donor.layout.files[span.file_index].path
                found[key] = Source(path, span.file_offset, span.length)
    skipped = set(skip)
    sources = {}
    for span in layout.pieces:
        source = found.get((digests[span.index], span.length))
        if source is not None and span.index not in skipped:
            sources[span.index] = source
    return sources


def copy(sources: dict[int, Source], layout: Layout, digests: Sequence[bytes], save_path: Path,
         on_piece: Callable[[int], None] | None = None, should_stop: Callable[[], bool] = lambda: False) -> set[int]:
    """Copy the planned pieces into the files under ``save_path``; returns the pieces copied and
    verified. A piece that cannot be read or does not match is left to the download."""
    copied: set[int] = set()
    handles: dict[Path, int] = {}
    try:
        for index in sorted(sources):
            if should_stop():
                break
            source = sources[index]
            try:
                with open(source.path, "rb") as f:
                    f.seek(source.offset)
                    data = f.read(source.length)
            except OSError as exc:
                log.warning("cannot reuse piece %d from %s: %s", index, source.path, exc)
                continue
            span = layout.pieces[index]
            if len(data) != source.length or piece_root(data, span, layout) != digests[index]:
                log.warning("piece %d in %s no longer matches its digest; downloading it", index, source.path)
                continue
            target = save_path / layout.files[span.file_index].path
            fd = handles.get(target)
            if fd is None:
                target.parent.mkdir(parents=True, exist_ok=True)
                fd = handles[target] = os.open(target, os.O_WRONLY | os.O_CREAT, 0o644)
            os.pwrite(fd, data, span.file_offset)
            copied.add(index)
            if on_piece is not None:
                on_piece(index)
        for fd in handles.values():
            os.fsync(fd)  # the resume data about to claim these pieces must not outlive them
    finally:
        for fd in handles.values():
            os.close(fd)
    return copied
