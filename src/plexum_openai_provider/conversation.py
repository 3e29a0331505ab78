"""The host's conversation as the protocol gives it: messages with roles, speakers and content
parts (text and images), parsed and validated.

Each part validates itself and :func:`parse_messages` raises :class:`InvalidRequestError` naming
the message or part (``messages[2].content[1]``), before anything runs."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ._io.files import NotRegularFile, read_file_without_links
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
    ``http(s)``). :meth:`read` gives the same part with ``content`` (its bytes) and ``mime``:
    what codex is given, never the path (see :meth:`read`)."""

    path: Path | None = None
    url: str | None = None
    # What was read (not part of the image's identity: a message is the same message whether
    # or not its images have been read yet).
    content: bytes | None = dataclasses.field(default=None, compare=False, repr=False)
    mime: str | None = dataclasses.field(default=None, compare=False)

    @property
    def remote(self) -> bool:
        """An http(s) URL: the model fetches it, nothing is read here."""
        return self.path is None and (self.url or "").startswith(("http://", "https://"))

    def read(self, field: str) -> ImagePart:
        """This part with its bytes, or InvalidRequestError naming ``field`` unless it is an
        image within the bounds (an http(s) URL is taken as it is: the model fetches it).

        A path must be absolute and name a regular file that is an image by its bytes. It is
        read here, once, without following a link anywhere on the way
        (:func:`~._io.files.read_file_without_links`), and only these bytes go to codex: a path
        in an agent's workspace can be swapped for a link by the agent at any moment, so a path
        checked now and read by codex later could be another agent's file by then."""
        if self.remote:
            return self
        if self.path is not None:
            path = str(self.path)
            if "\0" in path or not os.path.isabs(path):
                raise InvalidRequestError(f"image path {path!r} must be absolute", field=field)
            what = f"image {path!r}"
            try:
                read = read_file_without_links(Path(path), MAX_IMAGE_BYTES)
            except NotRegularFile as exc:
                raise InvalidRequestError(
                    f"{what} cannot be read: {exc.strerror} (an image is read as the regular"
                    " file its path names, never through a link: give the real path)",
                    field=field,
                ) from None
            except ValueError:
                raise InvalidRequestError(
                    f"{what} must be a normal absolute path (no '.', '..' or '//')", field=field
                ) from None
            except OSError as exc:
                raise InvalidRequestError(
                    f"{what} cannot be read: {exc.strerror or exc}", field=field
                ) from None
            if read.truncated:
                raise InvalidRequestError(
                    f"{what} is over {MAX_IMAGE_BYTES} bytes; at most {MAX_IMAGE_BYTES} are taken",
                    field=field,
                )
            raw = read.data
        else:
            url = self.url or ""
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
            what = "the image of the data: URL"
            if len(raw) > MAX_IMAGE_BYTES:
                raise InvalidRequestError(
                    f"{what} is {len(raw)} bytes; at most {MAX_IMAGE_BYTES} are taken",
                    field=field,
                )
        mime = image_type(raw[:16])
        if mime is None:
            raise InvalidRequestError(
                f"{what} is not an image (PNG, JPEG, GIF or WebP)", field=field
            )
        return dataclasses.replace(self, content=raw, mime=mime)

    def data_url(self) -> str:
        """The read image as a ``data:`` URL (of its type by its bytes)."""
        if self.content is None or self.mime is None:
            raise ValueError("the image has not been read (ImagePart.read)")
        return f"data:{self.mime};base64,{base64.b64encode(self.content).decode()}"


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
