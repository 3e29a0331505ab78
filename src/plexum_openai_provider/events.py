"""Canonical events of a turn, as the protocol names them (``event.type``).

Frozen dataclasses; :func:`event_to_dict` gives the wire form and :func:`event_from_dict` reads it
back (the host client uses it), tolerating fields it does not know.

Two kinds: what every host gets (:data:`BASE_TYPES`: the turn's text, its tool blocks, usage,
notices, errors) and what the agent is doing meanwhile (:data:`ACTIVITY_TYPES`: a call that
started, a running command's output, reasoning summaries, the plan, file changes, the context
window), which a host asks for (protocol.md, ``initialize`` ``events``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

__all__ = [
    "ACTIVITY_TYPES",
    "BASE_TYPES",
    "ContextWindow",
    "ErrorCode",
    "ErrorEvent",
    "Event",
    "EventStream",
    "FileChange",
    "FileChanged",
    "Notice",
    "Phase",
    "Plan",
    "PlanStep",
    "ReasoningDelta",
    "TextDelta",
    "ToolCall",
    "ToolOutputDelta",
    "ToolResult",
    "ToolStarted",
    "Usage",
    "event_from_dict",
    "event_to_dict",
]

ErrorCode = Literal[
    "codex_not_found",
    "codex_failed",
    "codex_exited",
    "unauthorized",
    "usage_limit",
    "rate_limited",
    "overloaded",
    "context_window_exceeded",
    "resume_failed",
    "timeout",
    "cancelled",
    "invalid_request",
    "internal",
]


Phase = Literal["commentary", "final_answer"]


@dataclass(frozen=True)
class TextDelta:
    """A piece of one of the turn's messages. ``message_id`` is stable within the turn (a new id
    is a new message: an interim one such as "Let me check the file…", or the answer); ``phase``
    is codex's word for the message, where codex says (app-server), else None. ``sub_agent``: the
    codex sub-agent that wrote it (its path, e.g. ``/root/helper``), None for the agent itself."""

    type: ClassVar[str] = "text_delta"
    text: str
    message_id: str = ""
    phase: Phase | None = None
    sub_agent: str | None = None


@dataclass(frozen=True)
class ToolCall:
    type: ClassVar[str] = "tool_call"
    block_id: str
    name: str
    arguments: str
    namespace: str | None = None
    sub_agent: str | None = None  # the codex sub-agent that made the call (see TextDelta)


@dataclass(frozen=True)
class ToolResult:
    type: ClassVar[str] = "tool_result"
    block_id: str
    output: str
    is_error: bool = False
    sub_agent: str | None = None


@dataclass(frozen=True)
class Usage:
    """Token counts: the one type for them, whether a turn's (the ``usage`` event) or any other
    figure codex reports (a thread's running total, one model response's)."""

    type: ClassVar[str] = "usage"
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0

    @classmethod
    def from_wire(cls, data: Any) -> Usage:
        """From codex's snake_case (exec JSONL, rollout) or camelCase (app-server) counts;
        a missing or non-integer count is 0."""
        if not isinstance(data, dict):
            return cls()

        def num(*keys: str) -> int:
            for key in keys:
                value = data.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
            return 0

        return cls(
            num("input_tokens", "inputTokens"),
            num("cached_input_tokens", "cachedInputTokens"),
            num("output_tokens", "outputTokens"),
            num("reasoning_output_tokens", "reasoningOutputTokens"),
        )

    def plus(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.cached_input_tokens + other.cached_input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_output_tokens + other.reasoning_output_tokens,
        )


@dataclass(frozen=True)
class Notice:
    """Something the host may want to know (``code``), in words (``message``); ``data``: the
    same as values, for the codes that have them (``waiting_for_account``, ``retrying``)."""

    type: ClassVar[str] = "notice"
    code: str
    message: str
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class ErrorEvent:
    """``retryable``: the same turn, sent again, can succeed (not before ``retry_after_s`` when
    codex says when); ``delivered``: codex already took the turn's messages (sent again, the
    plugin does not give them twice: see protocol.md)."""

    type: ClassVar[str] = "error"
    code: str
    message: str
    retryable: bool = False
    delivered: bool = False
    retry_after_s: float | None = None


# -- what the agent is doing (activity) ---------------------------------------------------------


@dataclass(frozen=True)
class ToolStarted:
    """codex started a call (a command, a host tool, a patch, code mode's ``exec``): the same
    ``block_id``, name, arguments and namespace as the ``tool_call`` that follows when it ends."""

    type: ClassVar[str] = "tool_started"
    block_id: str
    name: str
    arguments: str
    namespace: str | None = None


@dataclass(frozen=True)
class ToolOutputDelta:
    """A piece of a running command's output, as it comes (bounded per call: the whole output is
    in the call's ``tool_result``)."""

    type: ClassVar[str] = "tool_output_delta"
    block_id: str
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of one of the model's reasoning summaries; ``reasoning_id`` is stable per
    summary within the turn."""

    type: ClassVar[str] = "reasoning_delta"
    reasoning_id: str
    text: str


@dataclass(frozen=True)
class PlanStep:
    step: str
    status: Literal["pending", "in_progress", "completed"]


@dataclass(frozen=True)
class Plan:
    """The agent's plan as it now stands (each event replaces the last)."""

    type: ClassVar[str] = "plan"
    steps: tuple[PlanStep, ...]
    explanation: str | None = None


@dataclass(frozen=True)
class FileChange:
    """One file of a change: ``added``/``removed`` lines where codex gives the diff, else None."""

    path: str
    kind: Literal["add", "delete", "update"]
    added: int | None = None
    removed: int | None = None
    move_to: str | None = None


@dataclass(frozen=True)
class FileChanged:
    """codex changed files (a patch applied): one entry per file."""

    type: ClassVar[str] = "file_change"
    block_id: str
    changes: tuple[FileChange, ...]


@dataclass(frozen=True)
class ContextWindow:
    """How full the thread's context is after the turn: ``tokens`` in the thread, the model's
    ``window`` (None where codex does not say) and the share used (0..1, or None)."""

    type: ClassVar[str] = "context"
    tokens: int
    window: int | None = None
    used: float | None = None


Event: TypeAlias = (
    TextDelta
    | ToolCall
    | ToolResult
    | Usage
    | Notice
    | ErrorEvent
    | ToolStarted
    | ToolOutputDelta
    | ReasoningDelta
    | Plan
    | FileChanged
    | ContextWindow
)

_BASE: tuple[type[Event], ...] = (TextDelta, ToolCall, ToolResult, Usage, Notice, ErrorEvent)
_ACTIVITY: tuple[type[Event], ...] = (
    ToolStarted,
    ToolOutputDelta,
    ReasoningDelta,
    Plan,
    FileChanged,
    ContextWindow,
)
BASE_TYPES: frozenset[str] = frozenset(cls.type for cls in _BASE)
ACTIVITY_TYPES: frozenset[str] = frozenset(cls.type for cls in _ACTIVITY)
_BY_TYPE: dict[str, type[Event]] = {cls.type: cls for cls in _BASE + _ACTIVITY}


class EventStream:
    """A turn's events as an async iterator, fed as they come and ended once (one reader)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def put(self, event: Event) -> None:
        self._queue.put_nowait(event)

    def end(self) -> None:
        self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        while (event := await self._queue.get()) is not None:
            yield event


def event_to_dict(event: Event) -> dict[str, Any]:
    """The wire form; ``sub_agent`` only where a sub-agent's work is reported."""
    data = dataclasses.asdict(event)
    if data.get("sub_agent", "") is None:
        del data["sub_agent"]
    if isinstance(event, Notice) and event.data is None:
        del data["data"]  # a notice without values has none on the wire
    return {"type": event.type, **data}


def event_from_dict(data: dict[str, Any]) -> Event:
    """The event of a wire dict; unknown fields are ignored, an unknown type is a ValueError."""
    cls = _BY_TYPE.get(str(data.get("type")))
    if cls is None:
        raise ValueError(f"unknown event type {data.get('type')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    fields = {k: v for k, v in data.items() if k in names}
    if cls is Plan:
        fields["steps"] = tuple(_known(PlanStep, s) for s in fields.get("steps") or ())
    elif cls is FileChanged:
        fields["changes"] = tuple(_known(FileChange, c) for c in fields.get("changes") or ())
    return cls(**fields)


def _known(cls: Any, data: Any) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in (data if isinstance(data, dict) else {}).items() if k in names})
