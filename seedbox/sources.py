"""External storage behind one interface: a local path, http(s) with range requests, or S3.

A source is addressed by a base URI; a model file is read at ``base/<relative path>``. Every
source counts the bytes it read, so "bytes read from external storage" is measured, not assumed.
Reads stream into a file as the bytes arrive (``read_into``): a read cut short by a crash or a
dropped connection keeps what arrived, and the seedbox asks only for the rest.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import quote, unquote, urlparse

import httpx

from common.errors import SourceError


class Source(Protocol):
    @property
    def bytes_read(self) -> int:
        """Bytes read from external storage so far."""

    def read_into(self, path: str, offset: int, length: int, out: BinaryIO) -> None:
        """Write ``length`` bytes of ``path`` from ``offset`` to ``out`` as they arrive. Raises
        SourceError; what arrived before the error stays written."""

    def read(self, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes of ``path`` from ``offset``. Raises SourceError."""

    def close(self) -> None: ...


CHUNK = 64 << 10  # at most this much read and not yet written to the spool


class _Counter:
    def __init__(self) -> None:
        self.bytes_read = 0
        self._lock = threading.Lock()

    def _count(self, n: int) -> None:
        with self._lock:
            self.bytes_read += n

    def read_into(self, path: str, offset: int, length: int, out: BinaryIO) -> None:
        raise NotImplementedError

    def read(self, path: str, offset: int, length: int) -> bytes:
        buffer = io.BytesIO()
        self.read_into(path, offset, length, buffer)
        return buffer.getvalue()

    def _copy(self, chunks: Iterator[bytes], length: int, out: BinaryIO, where: str, hint: str | None = None) -> None:
        """Write the chunks to ``out`` and count them; a short body is a SourceError."""
        got = 0
        for chunk in chunks:
            chunk = chunk[:length - got]  # a server sending more than asked gets no say
            out.write(chunk)
            got += len(chunk)
            self._count(len(chunk))
            if got == length:
                break
        if got != length:
            raise SourceError(f"{where} returned {got} bytes, wanted {length}", hint=hint)


class LocalSource(_Counter):
    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = base

    def read_into(self, path: str, offset: int, length: int, out: BinaryIO) -> None:
        target = self.base / path

        def chunks() -> Iterator[bytes]:
            with open(target, "rb") as f:
                for start in range(offset, offset + length, CHUNK):
                    chunk = os.pread(f.fileno(), min(CHUNK, offset + length - start), start)
                    if not chunk:
                        return
                    yield chunk

        try:
            self._copy(chunks(), length, out, str(target), hint="it is shorter than the manifest says")
        except OSError as exc:
            raise SourceError(f"cannot read {target}: {exc.strerror}") from exc

    def close(self) -> None:
        pass


class HttpSource(_Counter):
    def __init__(self, base: str, timeout: float = 60.0) -> None:
        super().__init__()
        self.base = base.rstrip("/")
        self._http = httpx.Client(timeout=timeout, follow_redirects=True)

    def read_into(self, path: str, offset: int, length: int, out: BinaryIO) -> None:
        url = f"{self.base}/{quote(path)}"
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        try:
            with self._http.stream("GET", url, headers=headers) as response:
                if response.status_code >= 500:  # the server's trouble: retried, with backoff
                    raise SourceError(f"GET {url} answered {response.status_code}",
                                      hint="external storage is failing; check it")
                if response.status_code != 206:
                    raise SourceError(
                        f"GET {url} answered {response.status_code}, not 206 Partial Content",
                        hint="the server must support HTTP range requests",
                    )
                body = response.iter_bytes()
                self._copy(body, length, out, f"GET {url}")
                if response.headers.get("Content-Length") == str(length):
                    # The body's end, no bytes left: read, it hands the connection back for the next
                    # range. Left unread, httpx closes it, and every piece paid a new connection
                    # (a TLS handshake more over HTTPS).
                    for _ in body:
                        pass
        except httpx.HTTPError as exc:
            raise SourceError(f"GET {url} failed: {exc}") from exc

    def close(self) -> None:
        self._http.close()


class S3Source(_Counter):
    """``s3://bucket/prefix``: ranged GETs through boto3, so credentials, region and endpoint come
    from the usual places (``AWS_*`` environment, ``~/.aws`` profiles, instance roles;
    ``AWS_ENDPOINT_URL`` for S3-compatible stores such as MinIO or Ceph)."""

    def __init__(self, uri: str, timeout: float = 60.0) -> None:
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
                                                    max_pool_connections=32, read_timeout=timeout))

    def read_into(self, path: str, offset: int, length: int, out: BinaryIO) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = f"{self.prefix}/{path}" if self.prefix else path
        where = f"s3://{self.bucket}/{key}"
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={offset}-{offset + length - 1}")
            self._copy(response["Body"].iter_chunks(CHUNK), length, out, f"GET {where}",
                       hint="the object is shorter than the manifest says")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            hint = {"NoSuchKey": "is the model uploaded under this prefix?",
                    "NoSuchBucket": "check the bucket name and AWS_ENDPOINT_URL",
                    "AccessDenied": "check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, instance role)",
                    "InvalidRange": "the object is shorter than the manifest says"}.get(code)
            raise SourceError(f"GET {where} failed: {code or exc}", hint=hint) from exc
        except BotoCoreError as exc:
            raise SourceError(f"GET {where} failed: {exc}") from exc

    def close(self) -> None:
        self._s3.close()


def open_source(uri: str, timeout: float = 60.0) -> Source:
    """A source for ``file://``, a plain path, ``http://``, ``https://`` or ``s3://``; ``timeout``:
    seconds without a byte before a read gives up (and is retried). Raises SourceError."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        return HttpSource(uri, timeout)
    if parsed.scheme == "s3":
        return S3Source(uri, timeout)
    if parsed.scheme == "file":
        return LocalSource(Path(unquote(parsed.path)))
    if parsed.scheme == "":
        return LocalSource(Path(uri))
    raise SourceError(f"unsupported source {uri!r}", hint="use a path, file://, http://, https:// or s3://")
