"""External storage behind one interface: a local path, http(s) with range requests, or S3.

A source is addressed by a base URI; a model file is read at ``base/<relative path>``. Every
source counts the bytes it read, so "bytes read from external storage" is measured, not assumed.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote, urlparse

import httpx

from common.errors import SourceError


class Source(Protocol):
    @property
    def bytes_read(self) -> int:
        """Bytes read from external storage so far."""

    def read(self, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes of ``path`` from ``offset``. Raises SourceError."""

    def close(self) -> None: ...


class _Counter:
    def __init__(self) -> None:
        self.bytes_read = 0
        self._lock = threading.Lock()

    def _count(self, n: int) -> None:
        with self._lock:
            self.bytes_read += n


class LocalSource(_Counter):
    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = base

    def read(self, path: str, offset: int, length: int) -> bytes:
        target = self.base / path
        try:
            with open(target, "rb") as f:
                data = os.pread(f.fileno(), length, offset)
        except OSError as exc:
            raise SourceError(f"cannot read {target}: {exc.strerror}") from exc
        self._count(len(data))
        if len(data) != length:
            raise SourceError(f"{target} is shorter than the manifest says")
        return data

    def close(self) -> None:
        pass


class HttpSource(_Counter):
    def __init__(self, base: str, timeout: float = 60.0) -> None:
        super().__init__()
        self.base = base.rstrip("/")
        self._http = httpx.Client(timeout=timeout, follow_redirects=True)

    def read(self, path: str, offset: int, length: int) -> bytes:
        url = f"{self.base}/{quote(path)}"
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        try:
            response = self._http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise SourceError(f"GET {url} failed: {exc}") from exc
        self._count(len(response.content))
        if response.status_code != 206:
            raise SourceError(
                f"GET {url} answered {response.status_code}, not 206 Partial Content",
                hint="the server must support HTTP range requests",
            )
        if len(response.content) != length:
            raise SourceError(f"GET {url} returned {len(response.content)} bytes, wanted {length}")
        return response.content

    def close(self) -> None:
        self._http.close()


class S3Source(_Counter):
    """``s3://bucket/prefix``: ranged GETs through boto3, so credentials, region and endpoint come
    from the usual places (``AWS_*`` environment, ``~/.aws`` profiles, instance roles;
    ``AWS_ENDPOINT_URL`` for S3-compatible stores such as MinIO or Ceph)."""

    def __init__(self, uri: str) -> None:
        import boto3  # only a seedbox reading S3 pays for importing it
        from botocore.config import Config

        super().__init__()
        parsed = urlparse(uri)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        if not self.bucket:
            raise SourceError(f"no bucket in {uri!r}", hint="use s3://BUCKET/PREFIX")
        # boto3 clients are thread-safe; the seedbox reads with several threads at once.
        self._s3 = boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 3},
                                                    max_pool_connections=32))

    def read(self, path: str, offset: int, length: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        key = f"{self.prefix}/{path}" if self.prefix else path
        where = f"s3://{self.bucket}/{key}"
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}")
            data: bytes = response["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            hint = {"NoSuchKey": "is the model uploaded under this prefix?",
                    "NoSuchBucket": "check the bucket name and AWS_ENDPOINT_URL",
                    "AccessDenied": "check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, instance role)",
                    "InvalidRange": "the object is shorter than the manifest says"}.get(code)
            raise SourceError(f"GET {where} failed: {code or exc}", hint=hint) from exc
        except BotoCoreError as exc:
            raise SourceError(f"GET {where} failed: {exc}") from exc
        self._count(len(data))
        if len(data) != length:
            raise SourceError(f"GET {where} returned {len(data)} bytes, wanted {length}",
                              hint="the object is shorter than the manifest says")
        return data

    def close(self) -> None:
        self._s3.close()


def open_source(uri: str) -> Source:
    """A source for ``file://``, a plain path, ``http://``, ``https://`` or ``s3://``. Raises SourceError."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        return HttpSource(uri)
    if parsed.scheme == "s3":
        return S3Source(uri)
    if parsed.scheme == "file":
        return LocalSource(Path(unquote(parsed.path)))
    if parsed.scheme == "":
        return LocalSource(Path(uri))
    raise SourceError(f"unsupported source {uri!r}", hint="use a path, file://, http://, https:// or s3://")
