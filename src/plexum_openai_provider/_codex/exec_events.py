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

What the agent does meanwhile (0.163; recorded in ``tests/data/exec-0.163-activity.jsonl``)::

    {"type":"item.completed","item":{"id":"item_1","type":"reasoning","text":"Counting…"}}
    {"type":"item.started","item":{"id":"item_2","type":"todo_list",
                                   "items":[{"text":"count","completed":false},…]}}
    (item.updated and item.completed of the same todo_list as the plan changes)
    {"type":"item.completed","item":{"id":"item_5","type":"file_change","status":"completed",
                                     "changes":[{"path":"/ws/a.txt","kind":"add"}]}}

exec prints no output of a running command (only the whole, in the item's completion), no
model context window, and a plan step as done or not (no "in progress").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from ..events import FileChange, PlanStep, Usage

__all__ = [
    "AgentMessage",
    "ErrorLine",
    "ExecEvent",
    "FilesChanged",
    "ItemCompleted",
    "ItemError",
    "ItemStarted",
    "Malformed",
    "Other",
    "Reasoning",
    "ThreadStarted",
    "TodoList",
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
class Reasoning:
    """A reasoning summary, whole (exec prints it when the model has written it)."""

    item_id: str
    text: str


@dataclass(frozen=True)
class TodoList:
    """The agent's plan (its ``update_plan`` tool), as it now stands."""

    steps: tuple[PlanStep, ...]


@dataclass(frozen=True)
class FilesChanged:
    """A patch codex applied: the files (exec gives no diff, so no line counts)."""

    item_id: str
    changes: tuple[FileChange, ...]


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
    | Reasoning
    | TodoList
    | FilesChanged
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


def _steps(items: Any) -> tuple[PlanStep, ...]:
    out = []
    for entry in items if isinstance(items, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("text"), str):
            out.append(
                PlanStep(entry["text"], "completed" if entry.get("completed") else "pending")
            )
    return tuple(out)


def _changes(changes: Any) -> tuple[FileChange, ...]:
    out = []
    for change in changes if isinstance(changes, list) else ():
        if isinstance(change, dict) and change.get("kind") in ("add", "delete", "update"):
            out.append(FileChange(str(change.get("path", "")), change["kind"]))
    return tuple(out)


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
    item = data.get("item")
    if kind in ("item.started", "item.updated", "item.completed") and isinstance(item, dict):
        if item.get("type") == "todo_list":
            return TodoList(_steps(item.get("items")))
        if kind == "item.completed" and item.get("type") == "reasoning":
            text = item.get("text")
            return Reasoning(str(item.get("id", "")), text if isinstance(text, str) else "")
        completed = item.get("status") == "completed"
        if kind == "item.completed" and item.get("type") == "file_change" and completed:
            return FilesChanged(str(item.get("id", "")), _changes(item.get("changes")))
    if kind == "item.started":
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
