"""The on-disk model store and staged activation.

    <root>/<name>/staging/<version>/   download in progress (never visible as active)
    <root>/<name>/versions/<version>/  complete and verified
    <root>/<name>/current -> versions/<version>   the active model, swapped atomically
    <root>/<name>/state/<version>.*    the verified pieces (this boot's) and the manifest

Activation writes a temporary symlink and ``os.replace``s it over ``current``: a reader sees the
old model or the new one, never a missing or partial one.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from common.errors import StoreError
from common.layout import check_name

log = logging.getLogger("modeltorrent.client")


def boot_id() -> str:
    """This boot of the host (Linux); empty where unknown, which counts as the same boot."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


STATE_KINDS = ("resume", "verified.json", "manifest.json")


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def model_dir(self, name: str) -> Path:
        return self.root / check_name("model name", name)

    def staging(self, name: str, version: str) -> Path:
        return self.model_dir(name) / "staging" / check_name("version", version)

    def version_dir(self, name: str, version: str) -> Path:
        return self.model_dir(name) / "versions" / check_name("version", version)

    def current(self, name: str) -> Path:
        return self.model_dir(name) / "current"

    def state_file(self, name: str, version: str, kind: str) -> Path:
        path = self.model_dir(name) / "state" / f"{check_name('version', version)}.{kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # -- what is active -----------------------------------------------------------------------

    def active_version(self, name: str) -> str | None:
        link = self.current(name)
        if not link.is_symlink():
            return None
        return Path(os.readlink(link)).name

    def activate(self, name: str, version: str) -> None:
        """Point ``current`` at ``versions/<version>`` atomically. The version must exist."""
        target = self.version_dir(name, version)
        if not target.is_dir():
            raise FileNotFoundError(target)
        link = self.current(name)
        tmp = link.with_name(f".current.{os.getpid()}")
        if tmp.is_symlink():
            tmp.unlink()
        os.symlink(Path("versions") / version, tmp)
        os.replace(tmp, link)
        _fsync_dir(link.parent)
        # Versions are ordered by when they were last made active. An explicit time: the kernel's
        # own "now" for utime is only as fine as its clock tick, too coarse for two quick swaps.
        now = time.time_ns()
        os.utime(target, ns=(now, now))

    def versions(self, name: str) -> list[str]:
        """The verified versions on disk, the most recently activated first."""
        versions_dir = self.model_dir(name) / "versions"
        if not versions_dir.is_dir():
            return []
        return [p.name for p in sorted(versions_dir.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
                if p.is_dir()]

    def rollback(self, name: str, to: str | None = None) -> tuple[str | None, str]:
        """Make ``to`` (default: the version active before the current one) active again,
        atomically. Returns (previous, now active). Raises StoreError if there is none."""
        active = self.active_version(name)
        if to is None:
            older = [v for v in self.versions(name) if v != active]
            if not older:
                raise StoreError(f"no other version of {name} on this host to roll back to",
                                      hint=f"versions kept: {', '.join(self.versions(name)) or 'none'}")
            to = older[0]
        elif to not in self.versions(name):
            raise StoreError(f"{name} version {to} is not on this host",
                                  hint=f"versions kept: {', '.join(self.versions(name)) or 'none'}")
        self.activate(name, to)
        return active, to

    def prune(self, name: str, keep: int) -> list[str]:
        """Delete the oldest versions beyond ``keep``, never the active one. Returns those removed."""
        versions_dir = self.model_dir(name) / "versions"
        if not versions_dir.is_dir():
            return []
        active = self.active_version(name)
        removed = []
        for path in [versions_dir / v for v in self.versions(name)[keep:]]:
            if path.name != active:
                shutil.rmtree(path)
                for kind in STATE_KINDS:  # not a glob: version "1" must not take "1.5"'s state along
                    self.state_file(name, path.name, kind).unlink(missing_ok=True)
                removed.append(path.name)
        return removed

    # -- resume state ---------------------------------------------------------------------------

    def save_verified(self, name: str, version: str, verified: set[int]) -> None:
        """The pieces verified and on disk (written, not only in libtorrent's cache), with this boot."""
        _write_atomic(self.state_file(name, version, "verified.json"),
                      json.dumps({"boot": boot_id(), "pieces": sorted(verified)}).encode())
        # libtorrent's resume data is no longer kept (the verified set is the state): an old one goes.
        self.state_file(name, version, "resume").unlink(missing_ok=True)

    def save_manifest(self, name: str, version: str, manifest: bytes) -> None:
        """Kept beside the version so that a later version can find pieces they share."""
        _write_atomic(self.state_file(name, version, "manifest.json"), manifest)

    def load_manifest(self, name: str, version: str) -> bytes | None:
        path = self.state_file(name, version, "manifest.json")
        return path.read_bytes() if path.exists() else None

    def load_verified(self, name: str, version: str) -> set[int]:
        """The pieces saved as verified in this boot; none after a reboot since.

        The state file is fsynced, the downloaded data is not (libtorrent leaves it to the page
        cache), so after a power loss or a crash of the host the state may claim pieces the disk
        lost. Saved in another boot, it is dropped: libtorrent checks the files again and every
        piece it finds is verified again (read, not downloaded)."""
        verified_path = self.state_file(name, version, "verified.json")
        if not verified_path.exists():
            return set()
        try:
            saved = json.loads(verified_path.read_text())
        except (OSError, ValueError):
            saved = {}
        if not isinstance(saved, dict) or saved.get("boot") != boot_id():
            log.info("%s@%s: state saved before a reboot; checking the data on disk again", name, version)
            return set()
        return {int(i) for i in saved.get("pieces", [])}
