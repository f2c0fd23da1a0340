"""``modeltorrent publish``: one read of the model gives the manifest and the torrent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from common import signing, torrent
from common.errors import LayoutError, ModeltorrentError
from common.hashing import hash_tree
from common.layout import check_name, plan
from common.manifest import Manifest
from tracker.api_client import TrackerClient


def scan(path: Path) -> tuple[Path, list[tuple[str, int]]]:
    """The model's root folder and its (relative path, size) files.

    A single file is its own model: root is its folder. Symlinks are refused, so a model cannot
    point outside itself. Raises LayoutError.
    """
    path = path.resolve()
    if path.is_file():
        return path.parent, [(path.name, path.stat().st_size)]
    files = []
    for p in sorted(path.rglob("*")):
        if p.is_symlink():
            raise LayoutError(f"{p} is a symlink", hint="publish real files only")
        if p.is_file():
            files.append((p.relative_to(path).as_posix(), p.stat().st_size))
    if not files:
        raise LayoutError(f"{path} holds no files")
    return path, files


def publish(
    path: Path, *, name: str, version: str, key_path: Path, source: str | None, piece_size: int,
    tracker: str, admin_token: str, out_dir: Path | None = None, console: Console | None = None,
    torrent_format: torrent.Format = torrent.DEFAULT_FORMAT, republish: bool = False, stripes: int = 1,
) -> dict[str, Any]:
    """Hash, sign, build and register; SHA-1 is computed only for a ``hybrid`` or ``v1`` torrent. Returns the
    tracker's record. Raises ModeltorrentError."""
    check_name("model name", name)
    check_name("version", version)
    key = signing.load_private_key(key_path)
    root, files = scan(path)
    layout = plan(files, piece_size)
    if stripes > 1 and torrent_format == "v1":
        raise ModeltorrentError("--stripes needs a v2 or hybrid torrent",
                                hint="v1 is for stock clients, which join one torrent, not stripes: use --stripes 1")
    if stripes > layout.num_pieces:
        raise ModeltorrentError(f"{stripes} stripes for {layout.num_pieces} pieces of {piece_size} bytes",
                                hint="use at most one stripe per piece: fewer --stripes or a smaller --piece-size")
    # Before hours of hashing: the tracker answers, the token is the admin's, the version is free.
    with TrackerClient(tracker, admin_token=admin_token) as api:
        api.list_hosts()
        peer_ca = api.peer_ca()  # the torrent carries it where the tracker authenticates peers
        if not republish and api.published(name, version):
            raise ModeltorrentError(f"{name}@{version} is already published",
                                    hint="versions do not change: publish under a new --version (or pass "
                                    "--republish to register the same bytes again, which the tracker checks)")
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), console=console or Console(stderr=True),
                  transient=False) as bar:
        task = bar.add_task(f"hashing {name}@{version}", total=layout.total_size)
        digests = hash_tree(root, layout, progress=lambda n: bar.advance(task, n),
                            v1=torrent_format in ("hybrid", "v1"))
    manifest = Manifest.create(name=name, version=version, layout=layout, digests=digests, key=key,
                               source=source or root.as_uri())
    built = torrent.build(layout, digests, name, version=version,
                          comment=f"modeltorrent {manifest.ref} root={manifest.root}", torrent_format=torrent_format,
                          peer_ca=peer_ca)
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{name}-{version}.manifest.json").write_bytes(manifest.to_json())
        (out_dir / f"{name}-{version}.torrent").write_bytes(built)
    with TrackerClient(tracker, admin_token=admin_token) as api:
        return api.register(manifest, built, stripes)


def manifest_summary(manifest: Manifest) -> str:
    return json.dumps({"ref": manifest.ref, "root": manifest.root, "pieces": len(manifest.pieces)})
