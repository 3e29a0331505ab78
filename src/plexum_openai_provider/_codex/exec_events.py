"""The JSONL events ``codex exec --json`` prints on stdout, parsed forward-compatibly.

Only what the runner acts on gets a type; everything else (types of later codex versions) is :class:`Other` and is logged at debug. A line that is not a JSON object is :class:`Malformed`. Nothing here raises.

Shapes as printed by codex 0.135-0.169::

    {"type":"thread.started","thread_id":"0199…"}
    {"type":"turn.started"}
    {"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"…",
                                   "status":"in_progress",…}}
    {"type":"item.completed","item":{"id":"item_1","type":"command_execution",…}}
    {"type":"item.completed","item":{"id":"item_2","type":"agent_message","text":"…"}}
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

from ..events import Usage

__all__ = [
    "AgentMessage",
    "ErrorLine",
    "ExecEvent",
    "ItemCompleted",
    "ItemError",
    "ItemStarted",
    "Malformed",
    "Other",
    "ThreadStarted",
    "TurnCompleted",
    "TurnFailed",
    "TurnStarted",
    "parse_exec_line",
]


@dataclass(frozen=True)
class ThreadStarted:
    thread_id: str


@dataclass(frozen=True)
class TurnStarted:
    """codex took the turn's input."""


@dataclass(frozen=True)
class AgentMessage:
    text: str
    item_id: str = ""


@dataclass(frozen=True)
class ItemError:
    """An ``error`` item: codex warns about something and goes on (e.g. unknown model metadata)."""

    message: str


@dataclass(frozen=True)
class ItemStarted:
    """An item began that is not a message (a command, an MCP tool call…): codex prints nothing
    more of it until it completes."""

    item_id: str
    item_type: str


@dataclass(frozen=True)
class ItemCompleted:
    """Another item completed (a command, an MCP tool call, a file change, reasoning…): the
    runner reads the rollout for the call's block when it is a tool."""

    item_id: str
    item_type: str


@dataclass(frozen=True)
class TurnCompleted:
    """``usage`` is the thread's running total (codex 0.163/0.169), not this turn's."""

    usage: Usage


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
    | TurnStarted
    | AgentMessage
    | ItemError
    | ItemStarted
    | ItemCompleted
    | TurnCompleted
    | TurnFailed
    | ErrorLine
    | Other
    | Malformed
)


# Items that are the model talking (or codex warning), not something running.
_TALK = frozenset({"agent_message", "reasoning", "error", "todo_list"})


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
    if kind == "turn.started":
        return TurnStarted()
    if kind == "item.started":
        item = data.get("item")
        item_type = item.get("type") if isinstance(item, dict) else None
        if isinstance(item, dict) and isinstance(item_type, str) and item_type not in _TALK:
            return ItemStarted(str(item.get("id", "")), item_type)
        return Other(kind, data)
    if kind == "item.completed":
        item = data.get("item")
        if isinstance(item, dict):
            item_type = item.get("type")
            if item_type == "agent_message" and isinstance(item.get("text"), str):
                return AgentMessage(item["text"], str(item.get("id", "")))
            if item_type == "error":
                return ItemError(_message(item))
            if isinstance(item_type, str):
                return ItemCompleted(str(item.get("id", "")), item_type)
        return Other(kind, data)
    if kind == "turn.completed":
        return TurnCompleted(Usage.from_wire(data.get("usage")))
    if kind == "turn.failed":
        return TurnFailed(_message(data.get("error")) or "turn failed")
    if kind == "error":
        return ErrorLine(_message(data))
    return Other(kind, data)
