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

    def __init__(self, listen: str = "127.0.0.1", wrap: Callable[..., list[str]] | None = None,
                 replica_of: PostgresServer | None = None) -> None:
        """``replica_of``: a hot standby of that server, streaming its WAL (``pg_basebackup -R``)."""
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
        if replica_of is None:
            self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "-E", "UTF8")
        else:  # a copy of the primary that follows it, over its Unix socket (initdb's trust covers replication)
            self._run("pg_basebackup", "-h", str(replica_of.root), "-p", str(replica_of.port), "-U", "postgres",
                      "-D", str(self.data), "-R", "-X", "stream")
        if listen != "127.0.0.1" and replica_of is None:  # test data only: trust every address of the lab
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write("host all all 0.0.0.0/0 trust\n")
        if replica_of is None:
            # In the file, not on the command line: a command-line setting outranks ALTER SYSTEM,
            # and wait_for_standbys turns it on (seen: a commit lost in a failover it claimed none).
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write("synchronous_commit = off\n")
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.root / "server.log"), "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses={listen} -c fsync=off "
                  "-c max_connections=200", "start", wrap=True)
        self._count = 0

    def _sql(self, statement: str, database: str = "postgres") -> None:
        with psycopg.connect(f"host={self.root} port={self.port} user=postgres dbname={database}",
                             autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def wait_for_standbys(self) -> None:
        """From now on a commit returns once a standby has it: none is lost when this server dies
        and the standby is promoted (the server was started with ``synchronous_commit=off``)."""
        self._sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        self._sql("ALTER SYSTEM SET synchronous_commit = 'on'")
        self._sql("SELECT pg_reload_conf()")

    def crash(self) -> None:
        """Stop at once, as a killed server would (no shutdown checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")

    def promote(self) -> None:
        """A standby becomes a primary that takes writes."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "promote")

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
        self._sql(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@{self.listen}:{self.port}/{name}"

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():  # not after a crash
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
