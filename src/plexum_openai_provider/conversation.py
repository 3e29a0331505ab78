"""The host's conversation as the protocol gives it: messages with roles, speakers and content
parts (text and images), parsed and validated.

Each part validates itself and :func:`parse_messages` raises :class:`InvalidRequestError` naming
the message or part (``messages[2].content[1]``), before anything runs."""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import InvalidRequestError

__all__ = [
    "MAX_IMAGES",
    "MAX_IMAGE_BYTES",
    "ROLES",
    "ChatMessage",
    "ImagePart",
    "Part",
    "Role",
    "TextPart",
    "image_type",
    "parse_messages",
]

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
