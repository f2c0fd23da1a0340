"""Publisher keys: ed25519, private key as PKCS#8 PEM (mode 0600), public key as 64 hex chars."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.errors import ModeltorrentError, SignatureError

DEFAULT_KEY_PATH = Path(os.environ.get("MODELTORRENT_KEY", "~/.config/modeltorrent/publisher.key"))


def generate_key(path: Path, *, force: bool = False) -> str:
    """Write a new private key to ``path`` and its public key to ``path.pub``; return the public hex.

    Raises ModeltorrentError if ``path`` exists and ``force`` is false.
    """
    path = path.expanduser()
    if path.exists() and not force:
        raise ModeltorrentError(f"{path} already exists", hint="pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = public_hex(key)
    path.with_name(path.name + ".pub").write_text(public + "\n")
    return public


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Raises ModeltorrentError if the file is missing or not an ed25519 PEM key."""
    path = path.expanduser()
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise ModeltorrentError(
            f"no publisher key at {path}", hint="create one with `modeltorrent keygen`"
        ) from exc
    except ValueError as exc:
        raise ModeltorrentError(f"{path} is not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ModeltorrentError(f"{path} is not an ed25519 key")
    return key


def public_hex(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def parse_public_key(text: str) -> str:
    """Accept a 64-hex public key, or a path to a ``.pub`` file holding one; return the hex."""
    candidate = text.strip()
    if len(candidate) != 64 or not all(c in "0123456789abcdefABCDEF" for c in candidate):
        try:
            candidate = Path(candidate).expanduser().read_text().strip()
        except OSError as exc:
            raise ModeltorrentError(
                f"not a public key or a readable key file: {text!r}",
                hint="pass the 64 hex characters of a .pub file, or its path",
            ) from exc
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(candidate))
    except ValueError as exc:
        raise ModeltorrentError(f"not an ed25519 public key: {candidate!r}") from exc
    return candidate.lower()


def sign(key: Ed25519PrivateKey, message: bytes) -> str:
    return key.sign(message).hex()


def verify(public: str, message: bytes, signature: str) -> None:
    """Raises SignatureError unless ``signature`` (hex) signs ``message`` under ``public`` (hex)."""
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(
            bytes.fromhex(signature), message
        )
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError(
            "manifest signature is invalid", hint="the manifest was changed after it was signed"
        ) from exc
