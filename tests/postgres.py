"""A real PostgreSQL server for tests: Debian's package, installed and started by the test setup.

The server runs from a temporary data directory on a free port (fsync off: test data only) and is
stopped at the end of the session. Each test gets a database of its own.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg

from tests.system import require_debian_package, skip_or_fail
from tools.demo.procs import free_port


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """``listen``: the address it listens on (another than loopback: clients may connect from any
    address, without a password); ``wrap``: a command prefix it runs under (a lab host's network
    namespace, ``Host.argv``). The test process itself connects through the Unix socket, which
    every network namespace shares."""

    def __init__(self, listen: str = "127.0.0.1", wrap: Callable[..., list[str]] | None = None) -> None:
        bindir = _bin_dir()
        if bindir is None:
            require_debian_package("postgresql", "pg_lsclusters")
            bindir = _bin_dir()
        if bindir is None:
            skip_or_fail("PostgreSQL's initdb was not found after installing the postgresql package")
        assert bindir is not None
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="modeltorrent-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_owner: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "postgres", "postgres")
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        os.chmod(self.root, 0o755)
        self.listen = listen
        self._wrap = wrap
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8")
        if listen != "127.0.0.1":  # test data only: trust every address of the lab
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write("host all all 0.0.0.0/0 trust\n")
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.root / "server.log"), "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses={listen} -c fsync=off "
                  "-c synchronous_commit=off -c max_connections=200", "start", wrap=True)
        self._count = 0

    def _run(self, tool: str, *args: str, wrap: bool = False) -> None:
        """``wrap``: run it under ``self._wrap`` (the server's own process, in its namespace)."""
        argv = [*self._as_owner, str(self.bindir / tool), *args]
        if wrap and self._wrap:
            argv = self._wrap(*argv)
        result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stdout}{result.stderr}")

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        self._count += 1
        name = f"t{self._count}"
        with psycopg.connect(f"host={self.root} port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@{self.listen}:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
