"""Engine and schema. SQLite by default (WAL, so readers do not block the announce path);
PostgreSQL in production through the same URL setting. The schema is Alembic's: ``migrate``
brings any database to the newest revision and is a no-op when it is there already."""

from __future__ import annotations

import contextlib
import fcntl

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

# Connections: API requests hold at most API_SESSIONS (tracker/deps.py); the rest are for the
# background threads (peer flush, reconcile, refresh, metrics: one each) and the announce path's
# lookups on the event loop, which must never wait behind the API.
API_SESSIONS = 8
SQLITE_POOL = (5, 10)  # pool_size, max_overflow: SQLAlchemy's defaults
POSTGRES_POOL = (10, 20)


def make_engine(url: str, *, migrate_schema: bool = True) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=SQLITE_POOL[0], max_overflow=SQLITE_POOL[1])

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=POSTGRES_POOL[0], max_overflow=POSTGRES_POOL[1])
    if migrate_schema:
        migrate(engine)
    return engine


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "tracker:migrations")
    return config


# Any fixed number: the key of the PostgreSQL advisory lock every tracker takes to migrate.
MIGRATION_LOCK = 0x6D74_7472  # "mttr"


def migrate(engine: Engine, revision: str = "head") -> None:
    """One tracker at a time: a failover pair started together on a fresh PostgreSQL database both
    created Alembic's table, and the second failed ("duplicate key ... alembic_version"). The lock
    is the transaction's, so the second waits, then finds the schema at head. SQLite's (several
    tracker workers, "table alembic_version already exists"): a file lock beside the database."""
    config = alembic_config()
    with contextlib.ExitStack() as stack:
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            lock = stack.enter_context(open(f"{engine.url.database}.migrate-lock", "a"))
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        connection = stack.enter_context(engine.begin())
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
