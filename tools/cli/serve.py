"""Starting the tracker as a service: a port already taken is one clear error, and a ready line is
logged once it answers."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time

import httpx

from common.errors import ModeltorrentError

log = logging.getLogger("modeltorrent.tracker")


def check_port_free(host: str, port: int) -> None:
    """Raise ModeltorrentError (with a hint) if ``host:port`` cannot be listened on; uvicorn's own
    failure is a raw ``[Errno 98]`` and exit code 3."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ModeltorrentError(f"cannot listen on {host}:{port}: the port is in use",
                                        hint=f"stop what holds it (`ss -ltnp 'sport = :{port}'` shows it) "
                                        "or pass another --port") from exc
            raise ModeltorrentError(f"cannot listen on {host}:{port}: {exc.strerror}",
                                    hint="check --host: it must be an address of this machine") from exc


def log_when_ready(host: str, port: int, line: str, timeout: float = 120.0, https: bool = False) -> threading.Thread:
    """Log ``line`` once ``/healthz`` answers (a thread): ready means answering, in every worker mode.
    Over HTTPS the probe does not check the certificate: it sends no secret, and asks its own port."""
    probe_host = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    where = f"[{probe_host}]" if ":" in probe_host else probe_host
    url = f"{'https' if https else 'http'}://{where}:{port}/healthz"

    def wait() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1.0, verify=not https).status_code == 200:
                    log.info("%s", line)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        log.warning("the tracker did not answer %s within %.0f s", url, timeout)

    thread = threading.Thread(target=wait, name="ready", daemon=True)
    thread.start()
    return thread
