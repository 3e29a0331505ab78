"""The host's answer to ``host/call_tool``, read strictly: what the model gets is never silently
less than what the host sent.

A well-formed reply is ``{"content": [part, …], "is_error": bool}`` with text parts
``{"type": "text", "text": str}`` and image parts ``{"type": "image", "data": <base64>,
"mime_type": str}`` (``mimeType`` is accepted too). A reply of another shape becomes an error
result that says what was wrong, for the model to read; a part of another type (audio, a
resource…) is named in a note that it was dropped.
"""

from __future__ import annotations

from typing import Any

from ..requests import ToolImage, ToolOutput

__all__ = ["tool_output"]


def _malformed(name: str, why: str) -> ToolOutput:
    return ToolOutput(f"the host's reply to tool {name!r} was malformed: {why}", is_error=True)


def tool_output(name: str, result: Any) -> ToolOutput:
    if not isinstance(result, dict):
        return _malformed(name, f"it is {type(result).__name__}, not an object")
    is_error = result.get("is_error", False)
    if not isinstance(is_error, bool):
        return _malformed(name, f"is_error must be true or false, not {is_error!r}")
    parts = result.get("content")
    if not isinstance(parts, list):
        what = "missing" if parts is None else f"{type(parts).__name__}, not a list"
        return _malformed(name, f"content is {what}")
    texts: list[str] = []
    images: list[ToolImage] = []
    dropped: list[str] = []
    for i, part in enumerate(parts):
        if not isinstance(part, dict):
            return _malformed(name, f"content[{i}] is {type(part).__name__}, not an object")
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                return _malformed(name, f"content[{i}].text is not a string")
            texts.append(text)
        elif kind == "image":
            data = part.get("data")
            mime = part.get("mime_type", part.get("mimeType"))
            if not isinstance(data, str) or not isinstance(mime, str):
                return _malformed(name, f"content[{i}] is an image without data and mime_type")
            images.append(ToolImage(data, mime))
        else:
            dropped.append(repr(kind))
    if dropped:
        texts.append(
            f"[{len(dropped)} part(s) of type {', '.join(dropped)} dropped: only text and image"
            " parts reach codex]"
        )
    if not texts and not images:
        texts.append("[the tool returned no content]")
    return ToolOutput("\n".join(texts), is_error=is_error, images=tuple(images))
