"""The JSONL events ``codex exec --json`` prints on stdout, parsed forward-compatibly.

Only what the runner acts on gets a type; everything else (``turn.started``, ``item.started``,
reasoning, command and file items, types of later codex versions) is :class:`Other` and is logged
at debug. A line that is not a JSON object is :class:`Malformed`. Nothing here raises.

Shapes as printed by codex 0.135-0.169::

    {"type":"thread.started","thread_id":"0199…"}
    {"type":"item.completed","item":{"id":"item_1","type":"agent_message","text":"…"}}
    {"type":"item.completed","item":{"id":"item_0","type":"error","message":"…"}}
    {"type":"turn.completed","usage":{"input_tokens":…,"cached_input_tokens":…,"output_tokens":…,
                                      "reasoning_output_tokens":…}}
    {"type":"turn.failed","error":{"message":"…"}}
    {"type":"error","message":"Reconnecting... 1/5"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "AgentMessage",
    "ErrorLine",
    "ExecEvent",
    "ItemError",
    "Malformed",
    "Other",
    "ThreadStarted",
    "TokenCounts",
    "TurnCompleted",
    "TurnFailed",
    "parse_exec_line",
]


@dataclass(frozen=True)
class TokenCounts:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0

    @classmethod
    def from_wire(cls, data: Any) -> TokenCounts:
        if not isinstance(data, dict):
            return cls()

        def num(key: str) -> int:
            value = data.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else 0

        return cls(
            num("input_tokens"),
            num("cached_input_tokens"),
            num("output_tokens"),
            num("reasoning_output_tokens"),
        )

    def plus(self, other: TokenCounts) -> TokenCounts:
        return TokenCounts(
            self.input_tokens + other.input_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_output_tokens + other.reasoning_output_tokens,
        )


@dataclass(frozen=True)
class ThreadStarted:
    thread_id: str


@dataclass(frozen=True)
class AgentMessage:
    text: str


@dataclass(frozen=True)
class ItemError:
    """An ``error`` item: codex warns about something and goes on (e.g. unknown model metadata)."""

    message: str


@dataclass(frozen=True)
class TurnCompleted:
    """``usage`` is the thread's running total (codex 0.163/0.169), not this turn's."""

    usage: TokenCounts


@dataclass(frozen=True)
class TurnFailed:
    message: str


@dataclass(frozen=True)
class ErrorLine:
    """A top-level ``error`` line: ends the turn only if ``turn.failed`` follows."""

    message: str


@dataclass(frozen=True)
class Other:
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Malformed:
    line: bytes
    reason: str


ExecEvent: TypeAlias = (
    ThreadStarted
    | AgentMessage
    | ItemError
    | TurnCompleted
    | TurnFailed
    | ErrorLine
    | Other
    | Malformed
)


def _message(obj: Any) -> str:
    if isinstance(obj, dict):
        msg = obj.get("message")
        if isinstance(msg, str):
            return msg
    if isinstance(obj, str):
        return obj
    return json.dumps(obj) if obj is not None else ""


def parse_exec_line(line: bytes) -> ExecEvent:
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        return Malformed(line, f"not JSON: {exc}")
    if not isinstance(data, dict):
        return Malformed(line, "not a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str):
        return Malformed(line, "no string 'type'")
    if kind == "thread.started":
        tid = data.get("thread_id")
        if isinstance(tid, str) and tid:
            return ThreadStarted(tid)
        return Malformed(line, "thread.started without thread_id")
    if kind == "item.completed":
        item = data.get("item")
        if isinstance(item, dict):
            item_type = item.get("type")
            if item_type == "agent_message" and isinstance(item.get("text"), str):
                return AgentMessage(item["text"])
            if item_type == "error":
                return ItemError(_message(item))
        return Other(kind, data)
    if kind == "turn.completed":
        return TurnCompleted(TokenCounts.from_wire(data.get("usage")))
    if kind == "turn.failed":
        return TurnFailed(_message(data.get("error")) or "turn failed")
    if kind == "error":
        return ErrorLine(_message(data))
    return Other(kind, data)
