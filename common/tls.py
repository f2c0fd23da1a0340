"""Verifying an HTTPS tracker: one setting, ``MODELTORRENT_CA_BUNDLE`` (the CLI's ``--ca-bundle``),
for the JSON API client and for libtorrent's announces.

libtorrent 2.1 (PyPI wheel) verifies an HTTPS tracker's certificate (``validate_https_trackers``,
on by default) against OpenSSL's default store, and has no setting for a CA file: OpenSSL reads
``SSL_CERT_FILE`` when libtorrent makes its TLS context. Checked on this machine: a tracker with a
certificate from a private CA failed with "certificate verify failed" and answered once
``SSL_CERT_FILE`` named the CA (tests/test_tls.py runs it end to end).
"""

from __future__ import annotations

import os
import ssl

CA_BUNDLE_ENV = "MODELTORRENT_CA_BUNDLE"


def ca_bundle() -> str | None:
    return os.environ.get(CA_BUNDLE_ENV) or None


def http_verify() -> ssl.SSLContext | bool:
    """What httpx verifies an HTTPS tracker with: the CA bundle if one is set, else the system's."""
    bundle = ca_bundle()
    return ssl.create_default_context(cafile=bundle) if bundle else True


def for_libtorrent() -> None:
    """Point libtorrent's OpenSSL at the CA bundle, before a session makes its TLS context."""
    bundle = ca_bundle()
    if bundle:
        os.environ["SSL_CERT_FILE"] = bundle


def is_certificate_error(exc: BaseException) -> bool:
    return "CERTIFICATE_VERIFY_FAILED" in str(exc) or "certificate verify failed" in str(exc)
