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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .exec_events import TokenCounts

__all__ = [
    "Block",
    "RolloutLocator",
    "RolloutRecord",
    "end_offset",
    "open_rollout",
    "output_text",
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
            raw = line[:-1]
            try:
                data = json.loads(raw)
            except ValueError:
                log.debug("skipping a rollout line that is not JSON at %s:%d", path, start)
                continue
            if isinstance(data, dict):
                yield RolloutRecord(start, raw, data)


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


@dataclass(frozen=True)
class Block:
    """One tool call of a turn, paired with its output (``None`` if it never got one)."""

    call_id: str
    name: str
    arguments: str
    namespace: str | None
    output: str | None
    is_error: bool = False


_CALLS = {"function_call": "arguments", "custom_tool_call": "input"}
_OUTPUTS = {"function_call_output", "custom_tool_call_output"}


def output_text(output: Any) -> str:
    """A call output as text: codex records a string, or a list of ``input_text`` items."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in output
            if isinstance(part, dict) and "text" in part
        )
    return json.dumps(output)


def tool_blocks(records: Iterable[RolloutRecord]) -> list[Block]:
    """Every call/output pair among ``records``, in call order.

    ``is_error``: codex does not mark an MCP error in the output the model gets, but records the
    tool call item with ``isError`` (codex 0.163); an output with ``success: false`` is one too.
    """
    calls: dict[str, dict[str, Any]] = {}
    outputs: dict[str, Any] = {}
    failed: set[str] = set()
    for record in records:
        payload = record.payload
        kind = payload.get("type")
        if record.type == "response_item":
            call_id = payload.get("call_id")
            if not isinstance(call_id, str):
                continue
            if kind in _CALLS:
                calls.setdefault(call_id, payload)
            elif kind in _OUTPUTS:
                outputs[call_id] = payload.get("output")
                if payload.get("success") is False:
                    failed.add(call_id)
        elif record.type == "event_msg" and kind == "mcp_tool_call_end":  # codex 0.136
            result = payload.get("result")
            ok = result.get("Ok") if isinstance(result, dict) else None
            if isinstance(result, dict) and (
                "Err" in result or (isinstance(ok, dict) and ok.get("isError") is True)
            ):
                failed.add(str(payload.get("call_id")))
        elif record.type == "event_msg" and kind == "item_completed":
            item = payload.get("item")
            if isinstance(item, dict) and item.get("type") == "McpToolCall":
                result = item.get("result")
                if item.get("status") == "failed" or (
                    isinstance(result, dict) and result.get("isError") is True
                ):
                    failed.add(str(item.get("id")))
    blocks = []
    for call_id, payload in calls.items():
        args = payload.get(_CALLS[str(payload.get("type"))])
        namespace = payload.get("namespace")
        blocks.append(
            Block(
                call_id=call_id,
                name=str(payload.get("name", "")),
                arguments=args if isinstance(args, str) else json.dumps(args),
                namespace=namespace if isinstance(namespace, str) else None,
                output=output_text(outputs[call_id]) if call_id in outputs else None,
                is_error=call_id in failed,
            )
        )
    return blocks


def turn_usage(records: Iterable[RolloutRecord]) -> TokenCounts | None:
    """The tokens of the turn these records belong to.

    codex 0.163+ records ``turn_token_usage`` (the last one of the turn is its total); older
    versions only a ``token_count`` event per model response, whose ``last_token_usage`` are added.
    """
    usage = None
    summed: TokenCounts | None = None
    for record in records:
        payload = record.payload
        if record.type == "token_usage_record" and "turn_token_usage" in payload:
            usage = TokenCounts.from_wire(payload["turn_token_usage"])
        elif record.type == "event_msg" and payload.get("type") == "token_count":
            info = payload.get("info")
            if isinstance(info, dict) and isinstance(info.get("last_token_usage"), dict):
                last = TokenCounts.from_wire(info["last_token_usage"])
                summed = last if summed is None else summed.plus(last)
    return usage if usage is not None else summed
