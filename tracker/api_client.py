"""The small HTTP client every other component uses to talk to the tracker.

Other components import this module only, never the tracker's server code.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from common.errors import ApiError
from common.manifest import Manifest


class TrackerClient:
    def __init__(self, url: str, *, admin_token: str | None = None, passkey: str | None = None,
                 timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        headers = {}
        if admin_token:
            headers["Authorization"] = f"Bearer {admin_token}"
        if passkey:
            headers["X-Passkey"] = passkey
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TrackerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Raises ApiError with the tracker's own message, or a hint if it cannot be reached."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the tracker at {self.url}: {exc}",
                           hint="is `modeltorrent tracker serve` running there?") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            if not isinstance(detail, str):
                detail = str(detail)
            hint = "check the admin token (MODELTORRENT_ADMIN_TOKEN)" if response.status_code == 401 else None
            raise ApiError(f"tracker said {response.status_code}: {detail}", response.status_code, hint)
        return response

    # -- admin --------------------------------------------------------------------------------

    def add_host(self, name: str, rack: str = "") -> dict[str, Any]:
        return self._request("POST", "/api/hosts", json={"name": name, "rack": rack}).json()  # type: ignore[no-any-return]

    def list_hosts(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/hosts").json()  # type: ignore[no-any-return]

    def register(self, manifest: Manifest, torrent: bytes) -> dict[str, Any]:
        body = {"manifest": manifest.model_dump(), "torrent": base64.b64encode(torrent).decode()}
        return self._request("POST", "/api/torrents", json=body).json()  # type: ignore[no-any-return]

    def list_torrents(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/torrents").json()  # type: ignore[no-any-return]

    def status(self, name: str | None = None) -> list[dict[str, Any]]:
        params = {"name": name} if name else {}
        return self._request("GET", "/api/status", params=params).json()  # type: ignore[no-any-return]

    # -- host ---------------------------------------------------------------------------------

    def manifest(self, name: str, version: str) -> Manifest:
        raw = self._request("GET", f"/api/torrents/{name}/{version}/manifest").content
        return Manifest.from_json(raw)

    def torrent(self, name: str, version: str) -> bytes:
        return self._request("GET", f"/api/torrents/{name}/{version}/torrent").content

    def report(self, **fields: Any) -> None:
        self._request("POST", "/api/status", json=fields)
