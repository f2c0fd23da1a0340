"""Start modeltorrent's services as real processes on this machine (demo, tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CLI = [sys.executable, "-m", "tools.cli"]
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None,
              verify: ssl.SSLContext | bool = True) -> None:
    """Poll ``url`` until it answers 200. Raises RuntimeError on timeout or if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=2, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


@dataclass
class Procs:
    """Processes started for one run, each logging to its own file; stopped together."""

    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # added to every process's environment

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        full_env = os.environ | {"PYTHONUNBUFFERED": "1"} | self.env | (env or {})
        full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
        with open(self.log_dir / f"{name}.log", "ab") as log:  # the child keeps its own copy
            proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                    cwd=REPO, start_new_session=True)
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return proc.returncode if proc else None
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)


def start_tracker(procs: Procs, db: Path | str, admin_token: str, *, interval: int = 5,
                  name: str = "tracker", env: dict[str, str] | None = None, workers: int = 1,
                  port: int | None = None, tls: tuple[Path, Path, Path] | None = None) -> str:
    """Start ``modeltorrent tracker serve`` on ``port`` (default: a free one); ``db`` is a SQLite file or
    a URL. ``tls``: (certificate, key, CA) to serve HTTPS with."""
    port = port or free_port()
    url = f"sqlite:///{db}" if isinstance(db, Path) else db
    https = ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])] if tls else []
    proc = procs.start(name, [*CLI, "tracker", "serve", "--port", str(port), "--db", url,
                              "--interval", str(interval), "--workers", str(workers), *https],
                       env={"MODELTORRENT_ADMIN_TOKEN": admin_token} | (env or {}))
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", proc=proc, verify=ssl.create_default_context(cafile=tls[2]) if tls else True)
    return url


def start_origin(procs: Procs, root: Path | None, *, fail_every: int = 0, stall_every: int = 0,
                 stall_seconds: float = 5.0, flip_once: int = -1, generate: str | None = None) -> str:
    """The demo origin serving ``root``, or with ``generate`` a generated model (``SIZE[:SEED]``)."""
    port = free_port()
    serve = ["--generate", generate] if generate else ["--root", str(root)]
    proc = procs.start("origin", [sys.executable, "-m", "tools.demo.origin", *serve,
                                  "--port", str(port), "--fail-every", str(fail_every),
                                  "--stall-every", str(stall_every), "--stall-seconds", str(stall_seconds),
                                  "--flip-once", str(flip_once)])
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/_stats", proc=proc)
    return url


def start_s3(procs: Procs) -> str:
    """A real S3-compatible HTTP server (moto's server mode, from the test extras); returns its
    endpoint URL, for ``AWS_ENDPOINT_URL``. Any access key is accepted."""
    port = free_port()
    proc = procs.start("s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)])
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/moto-api/", proc=proc)
    return url
