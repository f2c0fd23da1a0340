"""The small HTTP client every other component uses to talk to the tracker.

Other components import this module only, never the tracker's server code.
"""

from __future__ import annotations

import base64
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from common import tls
from common.backoff import backoff_delay
from common.errors import ApiError
from common.manifest import Manifest
from common.settings import tracker_urls

log = logging.getLogger("modeltorrent.api")
_rng = random.Random()  # retry jitter: spread, not secrecy
T = TypeVar("T")
CONNECT_TIMEOUT = 5.0  # s: a tracker on the same network answers a connect in milliseconds


class TrackerClient:
    def __init__(self, url: str, *, admin_token: str | None = None, passkey: str | None = None,
                 timeout: float = 30.0) -> None:
        # Several trackers (a failover pair on one database), comma-separated: the first that
        # answers is used until it stops answering.
        self.urls = tracker_urls(url) or [url]
        self.url = self.urls[0]
        headers = {}
        if admin_token:
            headers["Authorization"] = f"Bearer {admin_token}"
        if passkey:
            headers["X-Passkey"] = passkey
        # A tracker whose host is down does not refuse a connection, it never answers: give up on
        # it within CONNECT_TIMEOUT, not the whole request timeout, and fail over.
        limits = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT))
        self._http = httpx.Client(headers=headers, timeout=limits, verify=tls.http_verify())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TrackerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Raises ApiError with the tracker's own message, or a hint if it cannot be reached."""
        try:
            response = self._failover(method, path, **kwargs)
        except httpx.HTTPError as exc:
            if tls.is_certificate_error(exc):
                raise ApiError(f"the tracker at {self.url} has a certificate this host does not trust: {exc}",
                               hint=f"pass --ca-bundle (or set {tls.CA_BUNDLE_ENV}): the CA that signed it") from exc
            raise ApiError(f"cannot reach the tracker at {self.url}: {exc}",
                           hint="is `modeltorrent tracker serve` running there?") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            if not isinstance(detail, str):
                detail = str(detail)
            raise ApiError(f"tracker said {response.status_code}: {detail}", response.status_code,
                           self._hint(response.status_code, detail))
        return response

    def _failover(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The request to the tracker in use; if it cannot be connected to, to the next one (the
        request never left: safe to send again, POSTs too). A GET also moves on when the connection
        breaks under it (a tracker killed mid-request; a GET changes nothing, so sending it again is
        safe). Raises the last tracker's error."""
        moves_on: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout)
        if method == "GET":
            moves_on = (httpx.TransportError,)
        for attempt in range(len(self.urls)):
            try:
                return self._http.request(method, self.url + path, **kwargs)
            except moves_on as exc:
                if attempt == len(self.urls) - 1 or tls.is_certificate_error(exc):
                    raise
                failed = self.url
                self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
                log.warning("tracker %s cannot be reached (%s): trying %s", failed, exc, self.url)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _hint(self, status: int, detail: str) -> str | None:
        """What to check, for the credential this client sent and the tracker refused."""
        sent_passkey = "X-Passkey" in self._http.headers
        sent_admin = "Authorization" in self._http.headers
        if status == 401:
            if sent_passkey and ("passkey" in detail or not sent_admin):
                return ("check this host's passkey (--passkey or MODELTORRENT_PASSKEY): `modeltorrent hosts add "
                        "NAME` prints it, and a revoked host needs a new one")
            return "check the admin token (--admin-token or MODELTORRENT_ADMIN_TOKEN)"
        return None

    # -- admin --------------------------------------------------------------------------------

    def add_host(self, name: str, location: str = "", role: str = "client") -> dict[str, Any]:
        body = {"name": name, "location": location, "role": role}
        return self._request("POST", "/api/hosts", json=body).json()  # type: ignore[no-any-return]

    def list_hosts(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/hosts").json()  # type: ignore[no-any-return]

    def register(self, manifest: Manifest, torrent: bytes, stripes: int = 1) -> dict[str, Any]:
        body = {"manifest": manifest.model_dump(), "torrent": base64.b64encode(torrent).decode(), "stripes": stripes}
        return self._request("POST", "/api/torrents", json=body).json()  # type: ignore[no-any-return]

    def published(self, name: str, version: str) -> bool:
        """Whether ``name@version`` is registered (admin token or passkey)."""
        try:
            self._request("GET", f"/api/torrents/{name}/{version}/manifest")
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def peer_ca(self) -> str | None:
        """The peer CA's certificate (PEM) where the tracker authenticates peers, else None."""
        try:
            return self._request("GET", "/api/peer-ca").text
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def peer_certificate(self, public_key: str) -> dict[str, Any]:
        """A certificate for this host's key (passkey): {"certificate": PEM, "expires": Unix time}."""
        return self._request("POST", "/api/peer-certificate",  # type: ignore[no-any-return]
                             json={"public_key": public_key}).json()

    def peer_revocations(self) -> dict[str, Any]:
        """{"addresses": [ip, ...] of revoked hosts to refuse as peers, "poll": seconds} (passkey)."""
        return self._request("GET", "/api/peer-revocations").json()  # type: ignore[no-any-return]

    def list_torrents(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/torrents").json()  # type: ignore[no-any-return]

    def status(self, name: str | None = None) -> list[dict[str, Any]]:
        params = {"name": name} if name else {}
        return self._request("GET", "/api/status", params=params).json()  # type: ignore[no-any-return]

    # -- host ---------------------------------------------------------------------------------

    def manifest(self, name: str, version: str) -> Manifest:
        raw = self._request("GET", f"/api/torrents/{name}/{version}/manifest").content
        return Manifest.from_json(raw)

    def release(self, name: str, version: str) -> dict[str, Any]:
        """What the tracker holds of ``name@version``: sizes, info hashes, ``stripes``."""
        return self._request("GET", f"/api/torrents/{name}/{version}").json()  # type: ignore[no-any-return]

    def torrent(self, name: str, version: str) -> bytes:
        return self._request("GET", f"/api/torrents/{name}/{version}/torrent").content

    def report(self, **fields: Any) -> None:
        self._request("POST", "/api/status", json=fields)

    def desired(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/agent/desired").json()  # type: ignore[no-any-return]

    def hello(self, location: str | None = None) -> None:
        self._request("POST", "/api/agent/hello", json={"location": location})

    # -- deployments ----------------------------------------------------------------------------

    def deploy(self, name: str, version: str, *, hosts: list[str] | None = None,
               racks: list[str] | None = None, all_hosts: bool = False, key: str | None = None) -> dict[str, Any]:
        body = {"name": name, "version": version, "hosts": hosts, "racks": racks, "all": all_hosts, "key": key}
        return self._request("POST", "/api/deployments", json=body).json()  # type: ignore[no-any-return]

    def deployments(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/deployments").json()  # type: ignore[no-any-return]

    def deployment(self, job_id: int) -> dict[str, Any]:
        return self._request("GET", f"/api/deployments/{job_id}").json()  # type: ignore[no-any-return]

    def cancel(self, job_id: int) -> dict[str, Any]:
        return self._request("POST", f"/api/deployments/{job_id}/cancel").json()  # type: ignore[no-any-return]


def patiently(call: Callable[[], T], wait: float, stop: threading.Event | None = None) -> T:
    """``call`` to the tracker, again with backoff while the tracker cannot be reached (no HTTP answer
    at all), for up to ``wait`` seconds: a host or seedbox (re)started while the tracker restarts
    (seen in the soak, tools/lab/soak.py). An answer, even a refusal, is final. Raises the last
    ApiError."""
    deadline = time.monotonic() + wait
    for attempt in itertools.count(1):
        try:
            return call()
        except ApiError as exc:
            delay = backoff_delay(attempt, 0.5, 10.0, _rng)
            if exc.status is not None or time.monotonic() + delay > deadline or (stop and stop.is_set()):
                raise
            log.warning("%s; asking again in %.1f s", exc, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


class BackgroundReporter:
    """Posts the latest status snapshot from a thread, so a slow tracker never stalls the
    libtorrent alert loop. Only the newest snapshot is sent; older unsent ones are dropped."""

    def __init__(self, client: TrackerClient, interval: float = 1.0) -> None:
        self.client = client
        self.interval = interval
        self._latest: dict[str, Any] | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="status-reporter", daemon=True)
        self._thread.start()

    def progress(self, p: Any) -> None:
        """Submit a client ``Progress`` snapshot (anything with its fields)."""
        self.submit(name=p.name, version=p.version, state=p.state, pieces_verified=p.pieces_verified,
                    bytes_done=p.bytes_done, bytes_downloaded=p.bytes_downloaded,
                    download_rate=p.download_rate, error=p.error)

    def submit(self, **fields: Any) -> None:
        with self._cond:
            self._latest = fields
            self._cond.notify()

    def close(self, flush: bool = True) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=10 if flush else 0.1)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._latest is None and not self._closed:
                    self._cond.wait()
                fields, self._latest = self._latest, None
                closed = self._closed
            if fields is not None:
                try:
                    self.client.report(**fields)
                except ApiError as exc:
                    # A refused credential is the command's own error, said once by its main path
                    # with a hint; a warning here first would only come before it.
                    log.log(logging.DEBUG if exc.status == 401 else logging.WARNING, "status report failed: %s", exc)
            if closed:
                return
            time.sleep(self.interval)
