"""How every modeltorrent command logs: lines for people, or JSON lines for log shippers.

One-shot commands log warnings and errors only (their output is the progress they draw); the
services (``tracker serve``, ``seedbox run``, ``client run``) log at INFO by default: a ready line
and the events an operator looks for. ``MODELTORRENT_LOG`` (a level) and ``MODELTORRENT_LOG_FORMAT``
(``text`` or ``json``), or the ``--log-level``/``--log-format`` options, choose otherwise.
"""

from __future__ import annotations

import json
import logging
import sys
import time

FORMATS = ("text", "json")
_chosen_level: str | None = None  # given by the user: services keep it


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup(level: str | None, fmt: str = "text") -> None:
    """Configure the root logger. ``level`` None: WARNING, until a service raises it (``service``).
    Raises ValueError for an unknown level or format."""
    global _chosen_level
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}: use one of {', '.join(FORMATS)}")
    if level is not None and not isinstance(logging.getLevelName(level.upper()), int):
        raise ValueError(f"unknown log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    _chosen_level = level.upper() if level else None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json"
                         else logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_chosen_level or "WARNING")


# Libraries whose INFO lines are not events an operator looks for (every HTTP request, every
# migration step): they keep WARNING when a service raises the level to INFO.
QUIET = ("alembic", "httpx", "httpcore", "botocore", "boto3", "urllib3", "asyncio")


def service() -> None:
    """A long-running service starts: INFO unless the user chose a level."""
    if _chosen_level is None:
        logging.getLogger().setLevel(logging.INFO)
        for name in QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
