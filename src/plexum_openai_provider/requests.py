"""The typed inputs and outputs of a turn: agent context, turn request, turn result, host tools.

Each input type validates itself (``validate``) and raises :class:`InvalidRequestError` naming the
field, before anything runs."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._io.text import lone_surrogate
from .conversation import MAX_IMAGES, ChatMessage, ImagePart, Part, TextPart
from .errors import InvalidRequestError
from .events import ACTIVITY_TYPES, BASE_TYPES, Usage, event_to_dict

__all__ = [
    "MAX_AGENT_ID",
    "MAX_INSTRUCTIONS_CHARS",
    "MAX_PROMPT_CHARS",
    "MAX_TURN_ID",
    "TRACEPARENT",
    "WHEN_BUSY",
    "AgentContext",
    "ChatMessage",
    "ConsumeResult",
    "ImagePart",
    "Timing",
    "ToolCallRequest",
    "ToolHandler",
    "ToolImage",
    "ToolOutput",
    "ToolSpec",
    "TurnError",
    "TurnRequest",
    "TurnResult",
    "TurnStatus",
    "WhenBusy",
    "check_text",
    "validate_tools",
]

MAX_AGENT_ID = 128
MAX_TURN_ID = 256
# codex 0.163 refuses a longer input ("input_too_large", max_chars 1048576) after it has already
# created a thread: refuse it here, before anything runs.
MAX_PROMPT_CHARS = 1_048_576
# The agent's instructions go to `codex exec` as one argument (-c developer_instructions=…), and
# Linux limits one argument to 128 KiB.
MAX_INSTRUCTIONS_CHARS = 100_000


def check_text(value: Any, field: str) -> None:
    """InvalidRequestError if ``value`` (or any string inside it) is not valid text."""
    problem = lone_surrogate(value)
    if problem is not None:
        raise InvalidRequestError(f"{field} is not valid text: {problem}", field=field)


TurnStatus = Literal["completed", "failed", "cancelled", "steered"]
# What turn/start does when the agent already has a running turn.
WhenBusy = Literal["refuse", "steer", "queue"]
WHEN_BUSY: tuple[str, ...] = ("refuse", "steer", "queue")


@dataclass(frozen=True)
class AgentContext:
    """Who the turn is for: the agent's id and its workspace (codex's working directory)."""

    id: str
    workspace: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "workspace", Path(self.workspace))

    def validate(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise InvalidRequestError("agent.id must be a non-empty string", field="agent.id")
        if len(self.id) > MAX_AGENT_ID:
            raise InvalidRequestError(
                f"agent.id is {len(self.id)} characters long; at most {MAX_AGENT_ID} are allowed",
                field="agent.id",
            )
        if any(unicodedata.category(ch).startswith("C") for ch in self.id):
            raise InvalidRequestError(
                f"agent.id {self.id!r} contains control or unassigned characters", field="agent.id"
            )
        ws = str(self.workspace)
        check_text(ws, "agent.workspace")
        if "\0" in ws or not os.path.isabs(ws):
            raise InvalidRequestError(
                f"agent.workspace {ws!r} must be an absolute path", field="agent.workspace"
            )
        if not self.workspace.is_dir():
            raise InvalidRequestError(
                f"agent.workspace {ws!r} does not exist or is not a directory",
                field="agent.workspace",
            )


# What the model's function-calling API accepts as a tool name.
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True)
class ToolSpec:
    """A host tool offered to the model for one turn."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})


def validate_tools(tools: tuple[ToolSpec, ...]) -> None:
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool.name, str) or not TOOL_NAME.fullmatch(tool.name):
            raise InvalidRequestError(
                f"tool name {tool.name!r} cannot be carried to the model: use 1-64 of A-Z a-z 0-9 _ -",
                field=f"{where}.name",
            )
        if tool.name in seen:
            raise InvalidRequestError(
                f"tool name {tool.name!r} is given twice", field=f"{where}.name"
            )
        seen.add(tool.name)
        if not isinstance(tool.description, str):
            raise InvalidRequestError(
                "a tool description must be a string", field=f"{where}.description"
            )
        check_text(tool.description, f"{where}.description")
        check_text(tool.input_schema, f"{where}.input_schema")
        schema = tool.input_schema
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise InvalidRequestError(
                f"the input_schema of tool {tool.name!r} must be a JSON Schema object with"
                ' "type": "object"',
                field=f"{where}.input_schema",
            )
        try:
            json.dumps(schema)
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError(
                f"the input_schema of tool {tool.name!r} is not JSON: {exc}",
                field=f"{where}.input_schema",
            ) from None


@dataclass(frozen=True)
class ToolCallRequest:
    """A call of a host tool by the model, during a turn."""

    turn_id: str
    agent_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolImage:
    """An image in a tool's answer: base64 ``data`` of type ``mime_type``. It reaches the model
    as an MCP image; codex decides whether the model takes images (it says so in the output if
    it drops one)."""

    data: str
    mime_type: str


@dataclass(frozen=True)
class ToolOutput:
    """The host's answer to a tool call: text for the model, images, and whether it is an error."""

    text: str
    is_error: bool = False
    images: tuple[ToolImage, ...] = ()


ToolHandler = Callable[[ToolCallRequest], Awaitable[ToolOutput]]


@dataclass(frozen=True)
class TurnRequest:
    """One turn: ``prompt`` is one user message, or ``messages`` the host's conversation (the
    agent's instructions, what it missed, with speakers and images: see
    :func:`~._turn.messages.plan_turn` for what of it reaches codex)."""

    agent: AgentContext
    prompt: str = ""
    model: str | None = None
    turn_id: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    messages: tuple[ChatMessage, ...] = ()
    # The event types the caller wants: today's (BASE_TYPES) unless it asks for more, such as
    # ACTIVITY_TYPES (a host does so in `initialize`).
    events: frozenset[str] = BASE_TYPES
    # A W3C trace context: the turn is a child of the caller's span (telemetry, and codex's own).
    traceparent: str | None = None
    effort: str | None = None  # the model's reasoning effort (None: the configured default)

    @property
    def conversation(self) -> tuple[ChatMessage, ...]:
        return self.messages or (ChatMessage.user(self.prompt),)

    def validate(self) -> TurnRequest:
        """Everything that needs no config (the provider checks ``model`` against its own).
        Returns the request with its images read (:meth:`ImagePart.read`): the request to run,
        whose images are the bytes read now, never read again."""
        self.agent.validate()
        if self.turn_id is not None:
            if not isinstance(self.turn_id, str) or not self.turn_id:
                raise InvalidRequestError("turn_id must be a non-empty string", field="turn_id")
            if len(self.turn_id) > MAX_TURN_ID:
                raise InvalidRequestError(
                    f"turn_id is {len(self.turn_id)} characters long; at most {MAX_TURN_ID}",
                    field="turn_id",
                )
            check_text(self.turn_id, "turn_id")
        if self.messages and self.prompt:
            raise InvalidRequestError("give a prompt or messages, not both", field="messages")
        if not self.messages and (not isinstance(self.prompt, str) or not self.prompt):
            raise InvalidRequestError("the user message is empty", field="messages")
        images = sum(len(m.images) for m in self.conversation)
        if images > MAX_IMAGES:
            raise InvalidRequestError(
                f"{images} images; at most {MAX_IMAGES} are taken in one turn", field="messages"
            )
        read: list[ChatMessage] = []
        for i, message in enumerate(self.conversation):
            parts: list[Part] = []
            for j, part in enumerate(message.content):
                where = f"messages[{i}].content[{j}]"
                if isinstance(part, TextPart):
                    if "\0" in part.text:
                        raise InvalidRequestError("the text contains a NUL byte", field=where)
                    check_text(part.text, where)
                    parts.append(part)
                else:
                    parts.append(part.read(where))
            check_text(message.name, f"messages[{i}].name")
            read.append(dataclasses.replace(message, content=tuple(parts)))
        if self.model is not None:
            check_text(self.model, "model")
        if self.effort is not None and (not isinstance(self.effort, str) or not self.effort):
            raise InvalidRequestError("effort must be a non-empty string", field="effort")
        check_text(self.effort, "effort")
        validate_tools(self.tools)
        unknown = sorted(set(self.events) - BASE_TYPES - ACTIVITY_TYPES)
        if unknown:
            raise InvalidRequestError(f"unknown event type {unknown[0]!r}", field="events")
        if self.traceparent is not None and not TRACEPARENT.fullmatch(self.traceparent):
            raise InvalidRequestError(
                "traceparent is not a W3C trace context (00-<32 hex>-<16 hex>-<2 hex>)",
                field="traceparent",
            )
        if not images or not self.messages:
            return self
        return dataclasses.replace(self, messages=tuple(read))

    def check_images(self, *, readable: Sequence[str] | None, urls: bool) -> None:
        """What a confined agent and the engine add to the images' own checks: ``readable``
        (confined: the folders the agent may read besides its workspace) holds every image path
        (the host names it, the plugin reads it: not a way around the sandbox; the path is the
        file read, no link on the way: see :meth:`ImagePart.read`); without ``urls`` an http(s)
        image is refused."""
        roots: list[str] | None = None
        for i, message in enumerate(self.conversation):
            for j, part in enumerate(message.content):
                if not isinstance(part, ImagePart):
                    continue
                where = f"messages[{i}].content[{j}]"
                if part.path is not None and readable is not None:
                    if roots is None:  # only for a request with an image file (a path each)
                        roots = [
                            os.path.realpath(r) for r in (str(self.agent.workspace), *readable)
                        ]
                    path = str(part.path)
                    if not any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots):
                        raise InvalidRequestError(
                            f"image {path!r} is outside the agent's workspace and the"
                            " folders it may read (sandbox_readable)",
                            field=where,
                        )
                if part.remote and not urls:
                    raise InvalidRequestError(
                        "the exec engine gives codex images as files: send a path or a data: URL",
                        field=where,
                    )


# W3C Trace Context, version 00: trace id and parent id not all zeros (checked by telemetry).
TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


@dataclass(frozen=True)
class Timing:
    """Where a turn's time went: ``total_ms`` from the request to the result (in the plugin),
    ``first_token_ms`` to the first thing the model said (text, reasoning, a call), ``codex_ms``
    codex's own measure of the turn (app-server; None on exec)."""

    total_ms: int
    first_token_ms: int | None = None
    codex_ms: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "total_ms": self.total_ms,
            "first_token_ms": self.first_token_ms,
            "codex_ms": self.codex_ms,
        }


@dataclass(frozen=True)
class TurnError:
    code: str
    message: str
    retryable: bool = False  # the same turn, sent again, can succeed
    delivered: bool = False  # codex already took the turn's messages
    retry_after_s: float | None = None  # not before this, where codex says

    def to_wire(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "delivered": self.delivered,
            "retry_after_s": self.retry_after_s,
        }


@dataclass(frozen=True)
class TurnResult:
    turn_id: str
    status: TurnStatus
    thread_id: str | None = None
    usage: Usage | None = None
    error: TurnError | None = None
    into: str | None = None  # steered: the running turn the message joined
    timing: Timing | None = field(default=None, compare=False)  # a measure, not an outcome

    def to_wire(self) -> dict[str, Any]:
        """The ``turn/start`` result of the protocol."""
        usage = None
        if self.usage is not None:
            usage = {k: v for k, v in event_to_dict(self.usage).items() if k != "type"}
        wire: dict[str, Any] = {
            "turn_id": self.turn_id,
            "status": self.status,
            "thread_id": self.thread_id,
            "usage": usage,
            "error": self.error.to_wire() if self.error else None,
        }
        if self.into is not None:
            wire["into"] = self.into
        if self.timing is not None:
            wire["timing"] = self.timing.to_wire()
        return wire

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> TurnResult:
        usage = data.get("usage")
        error = data.get("error")
        return cls(
            turn_id=str(data.get("turn_id")),
            status=data.get("status", "failed"),
            thread_id=data.get("thread_id"),
            usage=Usage(**usage) if isinstance(usage, dict) else None,
            error=TurnError(
                str(error.get("code")),
                str(error.get("message")),
                error.get("retryable") is True,
                error.get("delivered") is True,
                error.get("retry_after_s")
                if isinstance(error.get("retry_after_s"), (int, float))
                else None,
            )
            if isinstance(error, dict)
            else None,
            into=data.get("into") if isinstance(data.get("into"), str) else None,
            timing=_timing(data.get("timing")),
        )


def _timing(data: Any) -> Timing | None:
    if not isinstance(data, dict) or not isinstance(data.get("total_ms"), int):
        return None

    def ms(key: str) -> int | None:
        value = data.get(key)
        return value if isinstance(value, int) else None

    return Timing(data["total_ms"], ms("first_token_ms"), ms("codex_ms"))


@dataclass(frozen=True)
class ConsumeResult:
    consumed: list[str]
    not_found: list[str]
