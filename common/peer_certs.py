"""Certificates for peers that talk only to registered hosts (libtorrent's SSL torrents).

A torrent that carries a root certificate (``ssl-cert`` in its info dict) is an SSL torrent:
libtorrent then makes and takes its peer connections over TLS only, with SNI set to the info hash,
and both sides must present a certificate signed by that root. So the tracker holds a CA (the
*peer CA*), ``publish`` puts its certificate into the torrents, and every registered host asks the
tracker for a short-lived certificate for its own key (``issue``): a process that knows the info
hash but holds no such certificate gets a refused handshake and no byte of the model. A revoked
host gets no new certificate, and the one it has expires (``DEFAULT_HOURS``).

libtorrent also matches a peer certificate's names against the torrent's name, or ``*``: the
certificates here name the host and carry the DNS name ``*`` (any of this CA's torrents).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# How long a host's certificate is good for: the longest a revoked host's address is refused by
# peers on the tracker's word (REVOCATION_POLL), after which TLS refuses the certificate itself;
# libtorrent checks no revocation lists. Hosts renew at half of it: 10,000 hosts ask the tracker
# 5.6 times a second.
DEFAULT_HOURS = 1.0
# s between a host's questions to the tracker for the addresses of revoked hosts, which it then
# refuses, open connections included (tracker/revocations.py): the longest a revoked host keeps a
# connection. 10,000 hosts ask 330 times a second, small GETs; the announces of a 30-s interval
# come as often.
REVOCATION_POLL = 30.0

# RFC 7919's ffdhe2048 group. libtorrent wants DH parameters with every SSL torrent's certificate
# and raises a torrent error without them ("unsupported (DECODER routines) [dh params]"), which a
# client must treat as fatal; TLS 1.3 uses ECDHE and never these. Same bytes as
# `openssl genpkey -genparam -algorithm DH -pkeyopt dh_param:ffdhe2048`.
DH_PARAMS = """-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


@dataclass(frozen=True)
class KeyPair:
    key: str  # PEM, PKCS#8
    public: str  # PEM, SubjectPublicKeyInfo


def new_key() -> KeyPair:
    """An elliptic-curve key (P-256: made in a millisecond, and every TLS stack takes it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return KeyPair(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode(),
                   key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str = "modeltorrent peer CA", days: int = 3650) -> tuple[str, str]:
    """A new peer CA: (certificate PEM, key PEM)."""
    pair = new_key()
    key = serialization.load_pem_private_key(pair.key.encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode(), pair.key


def check_ca(cert_pem: str, key_pem: str) -> None:
    """Raises ValueError unless the two are a CA certificate and its own (elliptic-curve or RSA) key."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        key = serialization.load_pem_private_key(key_pem.encode(), None)
    except ValueError as exc:
        raise ValueError(f"not a PEM certificate and key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("the key must be an elliptic-curve or RSA key")
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        raise ValueError("the key is not the certificate's")
    try:
        if not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise ValueError("the certificate is not a CA's (basicConstraints CA:FALSE)")
    except x509.ExtensionNotFound as exc:
        raise ValueError("the certificate is not a CA's (no basicConstraints)") from exc


def issue(ca_cert_pem: str, ca_key_pem: str, public_key_pem: str, host: str, hours: float = DEFAULT_HOURS,
          now: datetime.datetime | None = None) -> str:
    """A certificate for ``host``'s public key, signed by the peer CA, good for ``hours``.
    Raises ValueError for a public key that is not PEM."""
    ca = x509.load_pem_x509_certificate(ca_cert_pem.encode())
    ca_key = serialization.load_pem_private_key(ca_key_pem.encode(), None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError("the peer CA's key must be an elliptic-curve or RSA key")
    try:
        public = serialization.load_pem_public_key(public_key_pem.encode())
    except ValueError as exc:
        raise ValueError(f"not a PEM public key: {exc}") from exc
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ValueError("the public key must be an elliptic-curve key (P-256)")
    now = now or datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(host)).issuer_name(ca.subject).public_key(public)
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=hours))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("*")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def expires(cert_pem: str) -> float:
    """When a certificate stops being good: a Unix time."""
    return x509.load_pem_x509_certificate(cert_pem.encode()).not_valid_after_utc.timestamp()


def lifetime(cert_pem: str) -> float:
    """Seconds from a certificate's start to its end."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    return (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds()


def public_of(key_pem: str) -> str:
    """The public half of a private key, PEM."""
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
