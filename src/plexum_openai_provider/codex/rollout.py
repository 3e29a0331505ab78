"""Reading codex's session files ("rollouts").

A thread's rollout is ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread_id>.jsonl``; a
resume appends to the same file (codex 0.163/0.169). Each line is ``{"timestamp", "ordinal",
"type", "payload", "metadata"?}``. Codex's maintainers call the format best effort, so everything
here reads tolerantly: a line it cannot parse is skipped, never raised.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .exec_events import TokenCounts

__all__ = ["RolloutLocator", "RolloutRecord", "read_records", "turn_usage"]

log = logging.getLogger(__name__)

_SUFFIXES = (".jsonl", ".jsonl.zst")


@dataclass(frozen=True)
class RolloutRecord:
    offset: int  # byte offset of the line in the file
    raw: bytes  # the line as it is on disk, without its newline
    data: dict[str, Any]

    @property
    def type(self) -> str:
        value = self.data.get("type")
        return value if isinstance(value, str) else ""

    @property
    def payload(self) -> dict[str, Any]:
        value = self.data.get("payload")
        return value if isinstance(value, dict) else {}


class RolloutLocator:
    """Finds a thread's rollout under a CODEX_HOME, and remembers where it was."""

    def __init__(self, codex_home: Path) -> None:
        self.codex_home = codex_home
        self._cache: dict[str, Path] = {}

    def find(self, thread_id: str) -> Path | None:
        cached = self._cache.get(thread_id)
        if cached is not None and cached.exists():
            return cached
        path = self._search(thread_id)
        if path is not None:
            self._cache[thread_id] = path
        return path

    def _search(self, thread_id: str) -> Path | None:
        # Recent day folders first (a thread started today or yesterday is the usual case), then
        # every folder: a walk of the whole tree costs more the longer codex has been in use.
        sessions = self.codex_home / "sessions"
        today = dt.datetime.now(dt.UTC).date()
        for days in (0, 1, -1):
            day = today - dt.timedelta(days=days)
            folder = sessions / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
            found = self._match(folder, thread_id)
            if found is not None:
                return found
        for root in (sessions, self.codex_home / "archived_sessions"):
            for suffix in _SUFFIXES:
                for path in root.rglob(f"rollout-*{thread_id}{suffix}"):
                    return path
        return None

    @staticmethod
    def _match(folder: Path, thread_id: str) -> Path | None:
        for suffix in _SUFFIXES:
            for path in folder.glob(f"rollout-*{thread_id}{suffix}"):
                return path
        return None


def read_records(path: Path, offset: int = 0) -> Iterator[RolloutRecord]:
    """The records of a plain ``.jsonl`` rollout from byte ``offset`` on (a line start)."""
    with path.open("rb") as f:
        f.seek(offset)
        pos = offset
        for line in f:
            start, pos = pos, pos + len(line)
            if not line.endswith(b"\n"):
                break  # codex is still writing this line; it is not a record yet
            raw = line[:-1]
            try:
                data = json.loads(raw)
            except ValueError:
                log.debug("skipping a rollout line that is not JSON at %s:%d", path, start)
                continue
            if isinstance(data, dict):
                yield RolloutRecord(start, raw, data)


def turn_usage(records: Iterator[RolloutRecord] | list[RolloutRecord]) -> TokenCounts | None:
    """The tokens of the turn these records belong to: the last ``turn_token_usage`` among them."""
    usage = None
    for record in records:
        if record.type == "token_usage_record" and "turn_token_usage" in record.payload:
            usage = TokenCounts.from_wire(record.payload["turn_token_usage"])
    return usage
