"""Logs a journal can use: ``PLEXUM_LOG_FORMAT=json`` writes one JSON object a line (``time``,
``level``, ``logger``, ``message``, and ``agent`` and ``turn`` where the line is about one).

A turn's task names its agent and turn once (:func:`log_context`); every line logged in it, and
in what it starts, carries them, without each call saying so.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
from typing import Any

__all__ = ["JsonFormatter", "log_context"]

_CONTEXT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "plexum_log_context", default=None
)


def log_context(**fields: str) -> None:
    """Name what the current task works for (``agent``, ``turn``) in its log lines."""
    _CONTEXT.set({**(_CONTEXT.get() or {}), **fields})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(_CONTEXT.get() or {})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)
