"""Alembic environment: the tracker's tables are SQLModel's metadata.

Run by ``tracker.db.migrate`` at start-up (with a live connection), or by hand:
``alembic -c tracker/alembic.ini -x url=postgresql+psycopg://... upgrade head``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import tracker.models  # noqa: F401  (registers the tables)

target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("give the database: -x url=sqlite:///tracker.db (or set sqlalchemy.url)")
    with create_engine(url).connect() as conn:
        _run(conn)


run()
