"""The exceptions modeltorrent raises on purpose.

    ModeltorrentError            message safe to show a user, plus a hint of what to do
    ├── LayoutError              a bad name, version, path or piece size
    ├── ManifestError            a manifest that is malformed or inconsistent
    │   ├── SignatureError       bad signature, or a publisher key nobody trusts
    │   └── PieceMismatch        data whose piece hash differs from the manifest's
    ├── TorrentMismatch          a torrent that does not describe the manifest's files
    ├── SourceError              external storage failed or served the wrong bytes
    ├── DiskSpaceError           not enough free space to stage a model
    ├── StoreError               a host's model store cannot do what was asked (e.g. no version to roll back to)
    └── ApiError                 the tracker refused a request or could not be reached

Third-party exceptions are translated where they are caught (``raise X(...) from exc``).
"""

from __future__ import annotations


class ModeltorrentError(Exception):
    """An error whose message is meant for the person running the command."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} (hint: {self.hint})"


class LayoutError(ModeltorrentError):
    pass


class ManifestError(ModeltorrentError):
    pass


class SignatureError(ManifestError):
    pass


class PieceMismatch(ManifestError):
    """A piece whose bytes do not hash to the manifest's piece root (v2 merkle root of its blocks)."""

    def __init__(self, index: int, path: str, expected: str, actual: str) -> None:
        super().__init__(
            f"piece {index} ({path}) does not match the manifest: "
            f"expected piece root {expected}, got {actual}",
            hint="the data was changed after publishing; re-publish or restore the original",
        )
        self.index = index
        self.path = path
        self.expected = expected
        self.actual = actual


class TorrentMismatch(ModeltorrentError):
    pass


class SourceError(ModeltorrentError):
    pass


class DiskSpaceError(ModeltorrentError):
    pass


class StoreError(ModeltorrentError):
    pass


class ApiError(ModeltorrentError):
    def __init__(self, message: str, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status
