"""Reading codex's session files ("rollouts").

A thread's rollout is ``$CODEX_HOME/sessions/YYYY/MM/DD/rollout-<time>-<thread_id>.jsonl``; a
resume appends to the same file (codex 0.163/0.169). Each line is ``{"timestamp", "ordinal",
"type", "payload", "metadata"?}``. Codex's maintainers call the format best effort, so everything
here reads tolerantly: a line it cannot parse is skipped, never raised.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..events import Usage
from .records import CALL_FIELDS, OUTPUT_TYPES, RESPONSE_ITEM, TURN_END_EVENTS, output_text

__all__ = [
    "Block",
    "BlockCollector",
    "RolloutLocator",
    "RolloutRecord",
    "RolloutTail",
    "UsageTally",
    "end_offset",
    "open_rollout",
    "read_records",
    "tool_blocks",
    "turn_usage",
]

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
        return self._cached(thread_id, self._search)

    def find_recent(self, thread_id: str) -> Path | None:
        """Only in the day folders of yesterday, today and tomorrow (UTC): where a thread started
        now is. Cheap enough to ask again and again."""
        return self._cached(thread_id, self._recent)

    def _cached(self, thread_id: str, search: Callable[[str], Path | None]) -> Path | None:
        cached = self._cache.get(thread_id)
        if cached is not None and cached.exists():
            return cached
        found = search(thread_id)
        if found is not None:
            self._cache[thread_id] = found
        return found

    def _recent(self, thread_id: str) -> Path | None:
        sessions = self.codex_home / "sessions"
        today = dt.datetime.now(dt.UTC).date()
        for days in (0, 1, -1):
            day = today - dt.timedelta(days=days)
            folder = sessions / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
            found = self._match(folder, thread_id)
            if found is not None:
                return found
        return None

    def _search(self, thread_id: str) -> Path | None:
        # Recent day folders first (a thread started today or yesterday is the usual case), then
        # every folder: a walk of the whole tree costs more the longer codex has been in use.
        found = self._recent(thread_id)
        if found is not None:
            return found
        sessions = self.codex_home / "sessions"
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


@contextlib.contextmanager
def open_rollout(path: Path) -> Iterator[BinaryIO]:
    """A rollout's bytes: plain, or decompressed on the fly for ``.jsonl.zst``."""
    with path.open("rb") as raw:
        if path.name.endswith(".zst"):
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as z:
                yield io.BufferedReader(z)
        else:
            yield raw


def read_records(path: Path, offset: int = 0) -> Iterator[RolloutRecord]:
    """The records of a rollout from byte ``offset`` on (a line start; in a ``.zst`` file, an
    offset in the decompressed bytes)."""
    with open_rollout(path) as f:
        if offset:
            if f.seekable():
                f.seek(offset)
            else:
                _skip(f, offset)
        pos = offset
        for line in f:
            start, pos = pos, pos + len(line)
            if not line.endswith(b"\n"):
                break  # codex is still writing this line; it is not a record yet
            record = _parse(line[:-1], start)
            if record is not None:
                yield record


def _parse(raw: bytes, offset: int) -> RolloutRecord | None:
    try:
        data = json.loads(raw)
    except ValueError:
        log.debug("skipping a rollout line that is not JSON at offset %d", offset)
        return None
    return RolloutRecord(offset, raw, data) if isinstance(data, dict) else None


def _skip(f: BinaryIO, count: int) -> None:
    while count > 0:
        chunk = f.read(min(count, 1 << 20))
        if not chunk:
            return
        count -= len(chunk)


def end_offset(path: Path) -> int:
    """Where the next record will start: the file's size (decompressed size for ``.zst``)."""
    if not path.name.endswith(".zst"):
        return path.stat().st_size
    total = 0
    with open_rollout(path) as f:
        while chunk := f.read(1 << 20):
            total += len(chunk)
    return total


class RolloutTail:
    """The records codex appends to a rollout, read as they come: each :meth:`read` returns the
    complete lines written since the last one (a line still being written waits for its end).
    Cheap when nothing changed (one ``fstat`` of a file kept open), so a running turn can call it
    often; :meth:`close` when done."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        self.offset = offset  # where the next unread line starts
        self._file: BinaryIO | None = None

    def read(self) -> list[RolloutRecord]:
        if self.path.name.endswith(".zst"):  # compressed (archived): no appending, read it all
            records = list(read_records(self.path, self.offset))
            if records:
                self.offset = records[-1].offset + len(records[-1].raw) + 1
            return records
        try:
            if self._file is None:
                self._file = self.path.open("rb")
            size = os.fstat(self._file.fileno()).st_size
            if size <= self.offset:
                return []
            self._file.seek(self.offset)
            data = self._file.read(size - self.offset)
        except OSError as exc:
            log.debug("cannot read the rollout %s: %s", self.path, exc)
            return []
        end = data.rfind(b"\n") + 1
        out = []
        pos = 0
        while pos < end:
            nl = data.index(b"\n", pos)
            record = _parse(data[pos:nl], self.offset + pos)
            if record is not None:
                out.append(record)
            pos = nl + 1
        self.offset += end
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass(frozen=True)
class Block:
    """One tool call of a turn, paired with its output (``None`` if it never got one)."""

    call_id: str
    name: str
    arguments: str
    namespace: str | None
    output: str | None
    is_error: bool = False


class BlockCollector:
    """Pairs a turn's calls with their outputs as records come in, and hands each out once.

    ``is_error``: codex does not mark an MCP error in the output the model gets, but records the
    call's item with ``isError`` (``item_completed`` with an ``McpToolCall``, codex 0.163; an
    ``mcp_tool_call_end`` in 0.136), before the output; an output with ``success: false`` is one
    too."""

    def __init__(self) -> None:
        self._calls: dict[str, dict[str, Any]] = {}
        self._outputs: dict[str, Any] = {}
        self._failed: set[str] = set()
        self._taken: set[str] = set()
        self._started: set[str] = set()
        self.turn_ended = False  # codex recorded the end of the turn (complete or aborted)

    def add(self, record: RolloutRecord) -> None:
        payload = record.payload
        kind = payload.get("type")
        if record.type == RESPONSE_ITEM:
            call_id = payload.get("call_id")
            if not isinstance(call_id, str):
                return
            if kind in CALL_FIELDS:
                self._calls.setdefault(call_id, payload)
            elif kind in OUTPUT_TYPES:
                self._outputs[call_id] = payload.get("output")
                if payload.get("success") is False:
                    self._failed.add(call_id)
        elif record.type == "event_msg":
            if kind in TURN_END_EVENTS:
                self.turn_ended = True
            elif kind == "mcp_tool_call_end":  # codex 0.136
                result = payload.get("result")
                ok = result.get("Ok") if isinstance(result, dict) else None
                if isinstance(result, dict) and (
                    "Err" in result or (isinstance(ok, dict) and ok.get("isError") is True)
                ):
                    self._failed.add(str(payload.get("call_id")))
            elif kind == "item_completed":
                item = payload.get("item")
                if isinstance(item, dict) and item.get("type") == "McpToolCall":
                    result = item.get("result")
                    if item.get("status") == "failed" or (
                        isinstance(result, dict) and result.get("isError") is True
                    ):
                        self._failed.add(str(item.get("id")))

    @property
    def open_calls(self) -> int:
        """Calls recorded without an output yet."""
        return sum(1 for c in self._calls if c not in self._outputs and c not in self._taken)

    def take_started(self) -> list[Block]:
        """The calls recorded since the last time (codex records a call as it starts it), once
        each, in call order, without their output."""
        out = []
        for call_id, payload in self._calls.items():
            if call_id in self._started:
                continue
            self._started.add(call_id)
            out.append(self._block(call_id, payload, with_output=False))
        return out

    def take_completed(self) -> list[Block]:
        """The calls that have their output now and were not handed out yet, in call order."""
        return self._take(lambda call_id: call_id in self._outputs)

    def take_rest(self) -> list[Block]:
        """Every call not handed out yet (at the turn's end: some may have no output)."""
        return self._take(lambda call_id: True)

    def _take(self, ready: Any) -> list[Block]:
        out = []
        for call_id, payload in self._calls.items():
            if call_id in self._taken or not ready(call_id):
                continue
            self._taken.add(call_id)
            out.append(self._block(call_id, payload, with_output=True))
        return out

    def _block(self, call_id: str, payload: dict[str, Any], *, with_output: bool) -> Block:
        args = payload.get(CALL_FIELDS[str(payload.get("type"))])
        namespace = payload.get("namespace")
        return Block(
            call_id=call_id,
            name=str(payload.get("name", "")),
            arguments=args if isinstance(args, str) else json.dumps(args),
            namespace=namespace if isinstance(namespace, str) else None,
            output=output_text(self._outputs[call_id])
            if with_output and call_id in self._outputs
            else None,
            is_error=call_id in self._failed,
        )


def tool_blocks(records: Iterable[RolloutRecord]) -> list[Block]:
    """Every call/output pair among ``records``, in call order."""
    collector = BlockCollector()
    for record in records:
        collector.add(record)
    return collector.take_rest()


class UsageTally:
    """The tokens of the turn whose records are added.

    codex 0.163+ records ``turn_token_usage`` (the last one of the turn is its total); older
    versions only a ``token_count`` event per model response, whose ``last_token_usage`` are added.
    """

    def __init__(self) -> None:
        self._recorded: Usage | None = None
        self._summed: Usage | None = None
        # The thread's tokens after the last model response and the model's window:
        # token_count's last_token_usage.total_tokens and model_context_window (0.136-0.171).
        self.context: tuple[int, int | None] | None = None
        self.rate_limits: dict[str, Any] | None = None  # the newest the turn's records hold

    def add(self, record: RolloutRecord) -> None:
        payload = record.payload
        if record.type == "token_usage_record" and "turn_token_usage" in payload:
            self._recorded = Usage.from_wire(payload["turn_token_usage"])
        elif record.type == "event_msg" and payload.get("type") == "token_count":
            limits = account_rate_limits(payload.get("rate_limits"))
            if limits is not None:
                self.rate_limits = limits
            info = payload.get("info")
            if isinstance(info, dict) and isinstance(info.get("last_token_usage"), dict):
                last = Usage.from_wire(info["last_token_usage"])
                self._summed = last if self._summed is None else self._summed.plus(last)
                total = info["last_token_usage"].get("total_tokens")
                window = info.get("model_context_window")
                self.context = (
                    total if isinstance(total, int) else last.input_tokens + last.output_tokens,
                    window if isinstance(window, int) else None,
                )

    def total(self) -> Usage | None:
        return self._recorded if self._recorded is not None else self._summed


def account_rate_limits(data: Any) -> dict[str, Any] | None:
    """The account's rate limits as codex records them with each model response's token count
    (from the service's ``x-codex-primary-*`` / ``x-codex-secondary-*`` headers; 0.163-0.171)::

        "rate_limits": {"limit_id": "codex", "primary": {"used_percent": 42.5,
          "window_minutes": 300, "resets_at": 1796340794}, "secondary": {…}, "credits": null,
          "plan_type": null, "rate_limit_reached_type": null, …}

    as ``{"primary": {used_percent, window_minutes, resets_at}, "secondary": …, "plan_type": …,
    "reached": …}`` (a window codex did not report is None); None when it holds no window."""
    if not isinstance(data, dict):
        return None

    def window(value: Any) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            return None
        out = {}
        for key in ("used_percent", "window_minutes", "resets_at"):
            number = value.get(key)
            ok = isinstance(number, (int, float)) and not isinstance(number, bool)
            out[key] = number if ok else None
        return out if out["used_percent"] is not None else None

    primary, secondary = window(data.get("primary")), window(data.get("secondary"))
    if primary is None and secondary is None:
        return None
    plan, reached = data.get("plan_type"), data.get("rate_limit_reached_type")
    return {
        "primary": primary,
        "secondary": secondary,
        "plan_type": plan if isinstance(plan, str) else None,
        "reached": reached if isinstance(reached, str) else None,
    }


def turn_usage(records: Iterable[RolloutRecord]) -> Usage | None:
    """The tokens of the turn these records belong to (see :class:`UsageTally`)."""
    tally = UsageTally()
    for record in records:
        tally.add(record)
    return tally.total()
