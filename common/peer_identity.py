"""A host's key and certificate for SSL torrents (``common/peer_certs.py``), kept on its disk.

The key is made here and never leaves the host (``peer.key``, mode 0600); the tracker signs its
public half (``issue``: the API client's ``peer_certificate``, so that ``common`` imports no
service). A certificate past half its life is renewed, and handed again to every SSL torrent's
handle, which takes it for its next connections.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import libtorrent as lt

from common import peer_certs

log = logging.getLogger("modeltorrent.peers")
RETRY = 60.0  # s between attempts to renew while the tracker does not answer


class PeerIdentity:
    """``issue``: the tracker's signature of a public key; ``revocations``: the tracker's list of
    addresses to refuse (``tracker/revocations.py``), asked as often as the tracker says."""

    def __init__(self, directory: Path, issue: Callable[[str], dict[str, Any]],
                 revocations: Callable[[], dict[str, Any]] | None = None) -> None:
        self.directory = directory
        self.issue = issue
        self.revocations = revocations
        self._cert: str | None = None
        self._key: str | None = None
        self._renew_at = 0.0
        self._poll_at = 0.0

    def _load_key(self) -> str:
        path = self.directory / "peer.key"
        if path.exists():
            return path.read_text()
        self.directory.mkdir(parents=True, exist_ok=True)
        pair = peer_certs.new_key()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(pair.key)
        os.replace(tmp, path)
        return pair.key

    def certificate(self, now: float | None = None) -> tuple[str, str]:
        """(certificate, key) in PEM, asking the tracker for a certificate when there is none on
        disk or it is past half its life. Raises ApiError (a revoked host: 401)."""
        now = time.time() if now is None else now
        if self._cert is None:
            self._key = self._load_key()
            saved = self.directory / "peer.crt"
            if saved.exists():
                self._cert = saved.read_text()
                self._renew_at = self._half_life(self._cert)
        if self._cert is None or now >= self._renew_at:
            assert self._key is not None
            public = peer_certs.public_of(self._key)
            got = self.issue(public)
            self._cert = str(got["certificate"])
            (self.directory / "peer.crt").write_text(self._cert)
            self._renew_at = self._half_life(self._cert)
            log.info("peer certificate from the tracker, good until %s",
                     time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(peer_certs.expires(self._cert))))
        assert self._key is not None
        return self._cert, self._key

    @staticmethod
    def _half_life(cert: str) -> float:
        end = peer_certs.expires(cert)
        return end - peer_certs.lifetime(cert) / 2

    def refresh(self, handles: Iterable[lt.torrent_handle], now: float | None = None) -> None:
        """Renew a certificate past half its life and give it to ``handles``. A tracker that cannot
        be reached is asked again a minute later: the certificate in use is good until it expires."""
        now = time.time() if now is None else now
        if self._cert is None or now < self._renew_at:
            return
        try:
            self.certificate(now)
        except Exception as exc:  # noqa: BLE001 (any failure to renew: keep the one in use, try again)
            self._renew_at = now + RETRY
            log.warning("could not renew this host's peer certificate (good until %s): %s; trying again in %.0f s",
                        time.strftime("%H:%M:%S", time.localtime(peer_certs.expires(self._cert))), exc, RETRY)
            return
        self.apply(handles)

    def revoked(self, now: float | None = None) -> set[str] | None:
        """The addresses of revoked hosts, when it is time to ask the tracker again; else None (also
        while the tracker does not answer: what was refused stays refused)."""
        now = time.monotonic() if now is None else now
        if self.revocations is None or now < self._poll_at:
            return None
        try:
            got = self.revocations()
        except Exception as exc:  # noqa: BLE001 (a tracker down or old: ask again later)
            self._poll_at = now + peer_certs.REVOCATION_POLL
            log.warning("could not ask the tracker which peers are revoked: %s; asking again in %.0f s",
                        exc, peer_certs.REVOCATION_POLL)
            return None
        self._poll_at = now + float(got.get("poll") or peer_certs.REVOCATION_POLL)
        return {str(a) for a in got.get("addresses", [])}

    def apply(self, handles: Iterable[lt.torrent_handle]) -> None:
        """Give every SSL torrent among ``handles`` this host's certificate."""
        cert, key = self.certificate()
        for handle in handles:
            info = handle.torrent_file() if handle.is_valid() else None
            if info is not None and info.ssl_cert():
                handle.set_ssl_certificate_buffer(cert, key, peer_certs.DH_PARAMS)
