"""The typed inputs and outputs of a turn: agent context, turn request, turn result, host tools.

Each input type validates itself (``validate``) and raises :class:`InvalidRequestError` naming the
field, before anything runs."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ._io.text import lone_surrogate
from .errors import InvalidRequestError
from .events import Usage, event_to_dict

__all__ = [
    "MAX_AGENT_ID",
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "MAX_INSTRUCTIONS_CHARS",
    "MAX_PROMPT_CHARS",
    "MAX_TURN_ID",
    "WHEN_BUSY",
    "AgentContext",
    "ChatMessage",
    "ConsumeResult",
    "ImagePart",
    "TextPart",
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
    "image_type",
    "parse_messages",
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
# Images per turn, and bytes per image: what a model takes in one request, with room to spare.
MAX_IMAGES = 8
MAX_IMAGE_BYTES = 10 * 1024 * 1024
# What an image file or data: URL must start with (by its bytes, not its name).
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
Role = Literal["system", "developer", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant")


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

    @property
    def conversation(self) -> tuple[ChatMessage, ...]:
        return self.messages or (ChatMessage.user(self.prompt),)

    def validate(self) -> None:
        """Everything that needs no config (the provider checks ``model`` against its own)."""
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
        images = 0
        for i, message in enumerate(self.conversation):
            for j, part in enumerate(message.content):
                where = f"messages[{i}].content[{j}]"
                if isinstance(part, TextPart):
                    if "\0" in part.text:
                        raise InvalidRequestError("the text contains a NUL byte", field=where)
                    check_text(part.text, where)
                else:
                    images += 1
                    part.validate(where)
            check_text(message.name, f"messages[{i}].name")
        if images > MAX_IMAGES:
            raise InvalidRequestError(
                f"{images} images; at most {MAX_IMAGES} are taken in one turn", field="messages"
            )
        if self.model is not None:
            check_text(self.model, "model")
        validate_tools(self.tools)


@dataclass(frozen=True)
class TurnError:
    code: str
    message: str


@dataclass(frozen=True)
class TurnResult:
    turn_id: str
    status: TurnStatus
    thread_id: str | None = None
    usage: Usage | None = None
    error: TurnError | None = None
    into: str | None = None  # steered: the running turn the message joined

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
            "error": {"code": self.error.code, "message": self.error.message}
            if self.error
            else None,
        }
        if self.into is not None:
            wire["into"] = self.into
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
            error=TurnError(str(error.get("code")), str(error.get("message")))
            if isinstance(error, dict)
            else None,
            into=data.get("into") if isinstance(data.get("into"), str) else None,
        )


@dataclass(frozen=True)
class ConsumeResult:
    consumed: list[str]
    not_found: list[str]


def image_type(head: bytes) -> str | None:
    """The image type of data that starts with ``head`` (PNG, JPEG, GIF, WebP), else None."""
    for magic, kind in _IMAGE_MAGIC:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    """An image: a file the plugin can read (``path``, absolute), or a ``url`` (``data:`` or
    ``http(s)``)."""

    path: Path | None = None
    url: str | None = None

    def validate(self, field: str) -> None:
        """InvalidRequestError naming ``field`` unless this is an image within the bounds: a
        path must be absolute, a regular file and an image by its bytes; a ``data:`` URL must be
        base64 of an image; an http(s) URL is taken as it is (the model fetches it)."""
        if self.path is not None:
            path = str(self.path)
            if "\0" in path or not os.path.isabs(path):
                raise InvalidRequestError(f"image path {path!r} must be absolute", field=field)
            try:
                info = os.stat(path)
                if not stat.S_ISREG(info.st_mode):
                    raise InvalidRequestError(f"image {path!r} is not a file", field=field)
                with open(path, "rb") as f:
                    head = f.read(16)
            except OSError as exc:
                raise InvalidRequestError(
                    f"image {path!r} cannot be read: {exc.strerror or exc}", field=field
                ) from None
            size = info.st_size
            what = f"image {path!r}"
        else:
            url = self.url or ""
            if url.startswith(("http://", "https://")):
                return
            if not _DATA_URL.match(url):
                raise InvalidRequestError(
                    "an image url must be a data: URL (data:image/png;base64,…) or http(s)",
                    field=field,
                )
            try:
                raw = base64.b64decode(url.split(",", 1)[1], validate=True)
            except (ValueError, binascii.Error):
                raise InvalidRequestError(
                    "the image's data: URL is not valid base64", field=field
                ) from None
            head, size, what = raw[:16], len(raw), "the image of the data: URL"
        if size > MAX_IMAGE_BYTES:
            raise InvalidRequestError(
                f"{what} is {size} bytes; at most {MAX_IMAGE_BYTES} are taken", field=field
            )
        if image_type(head) is None:
            raise InvalidRequestError(
                f"{what} is not an image (PNG, JPEG, GIF or WebP)", field=field
            )

    def data(self) -> bytes | None:
        """The bytes of a ``data:`` URL (None for a path or an http(s) URL)."""
        if self.url is None or not _DATA_URL.match(self.url):
            return None
        return base64.b64decode(self.url.split(",", 1)[1])


# data:image/png;base64,…  (the type is checked on the bytes, not trusted from the URL)
_DATA_URL = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,")

Part = TextPart | ImagePart


@dataclass(frozen=True)
class ChatMessage:
    """One message of the host's conversation: ``name`` is its speaker in a channel."""

    role: Role
    content: tuple[Part, ...]
    name: str | None = None

    @classmethod
    def user(cls, text: str, name: str | None = None) -> ChatMessage:
        return cls("user", (TextPart(text),), name)

    @property
    def text(self) -> str:
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.content if isinstance(p, ImagePart))


def _parse_part(raw: Any, field: str) -> Part:
    if not isinstance(raw, dict):
        raise InvalidRequestError("a content part must be an object", field=field)
    kind = raw.get("type")
    if kind == "text":
        text = raw.get("text")
        if not isinstance(text, str):
            raise InvalidRequestError("a text part needs a string text", field=f"{field}.text")
        return TextPart(text)
    if kind == "image":
        path, url = raw.get("path"), raw.get("url")
        if (path is None) == (url is None) or not isinstance(path or url, str):
            raise InvalidRequestError(
                "an image part needs a string path or a string url (one of them)", field=field
            )
        return ImagePart(Path(path) if isinstance(path, str) else None, url)
    raise InvalidRequestError(
        f"content part type {kind!r} is not known (text, image)", field=f"{field}.type"
    )


def parse_messages(raw: Any) -> tuple[ChatMessage, ...]:
    """The protocol's ``messages``, typed; InvalidRequestError naming the message or part."""
    if not isinstance(raw, list):
        raise InvalidRequestError("messages must be a list", field="messages")
    out: list[ChatMessage] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequestError("a message must be an object", field=where)
        role = message.get("role")
        if role not in ROLES:
            raise InvalidRequestError(
                f"role {role!r} is not known ({', '.join(ROLES)})", field=f"{where}.role"
            )
        name = message.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise InvalidRequestError(
                "name must be a non-empty string (the speaker)", field=f"{where}.name"
            )
        content = message.get("content")
        if isinstance(content, str):
            parts: tuple[Part, ...] = (TextPart(content),)
        elif isinstance(content, list):
            parts = tuple(_parse_part(p, f"{where}.content[{j}]") for j, p in enumerate(content))
        else:
            raise InvalidRequestError(
                "content must be a string or a list of parts", field=f"{where}.content"
            )
        if role != "user" and any(isinstance(p, ImagePart) for p in parts):
            raise InvalidRequestError("only user messages carry images", field=f"{where}.content")
        out.append(ChatMessage(role, parts, name.strip() if name else None))
    return tuple(out)
