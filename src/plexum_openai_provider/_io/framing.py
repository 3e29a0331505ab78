"""Newline framing for byte streams, with no limit on line length short of ``max_line``.

asyncio's ``StreamReader.readline`` fails on lines longer than its buffer limit; codex prints a
whole agent message on one JSONL line and the host may send a 16 MiB request, so both ends use this
framer instead. It is pure (no I/O) so that it can be tested on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ["LineFramer", "OversizeLine", "read_lines"]

DEFAULT_MAX_LINE = 512 * 1024 * 1024
_CHUNK = 1 << 16


@dataclass(frozen=True)
class OversizeLine:
    """Stands in for a line longer than ``max_line``; its bytes were dropped."""

    size: int


class LineFramer:
    """Feed bytes, get complete lines (without the trailing ``\\n``, a ``\\r`` before it kept)."""

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._max = max_line
        self._parts: list[bytes] = []
        self._size = 0
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes | OversizeLine]:
        out: list[bytes | OversizeLine] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                self._add(data[start:])
                return out
            self._add(data[start:nl])
            out.append(self._take())
            start = nl + 1

    def flush(self) -> bytes | OversizeLine | None:
        """The unterminated rest at end of stream, if any."""
        if not self._parts and not self._skipping:
            return None
        return self._take()

    def _add(self, piece: bytes) -> None:
        if not piece:
            return
        self._size += len(piece)
        if self._skipping or self._size > self._max:
            self._skipping = True
            self._parts.clear()
            return
        self._parts.append(piece)

    def _take(self) -> bytes | OversizeLine:
        line: bytes | OversizeLine
        line = OversizeLine(self._size) if self._skipping else b"".join(self._parts)
        self._parts, self._size, self._skipping = [], 0, False
        return line


async def read_lines(
    reader: asyncio.StreamReader, max_line: int = DEFAULT_MAX_LINE
) -> AsyncIterator[bytes | OversizeLine]:
    """Every line of ``reader`` until EOF; an unterminated last line is yielded too."""
    framer = LineFramer(max_line)
    while True:
        chunk = await reader.read(_CHUNK)
        if not chunk:
            rest = framer.flush()
            if rest is not None:
                yield rest
            return
        for line in framer.feed(chunk):
            yield line
