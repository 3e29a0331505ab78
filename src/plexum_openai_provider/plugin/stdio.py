"""The plugin's stdin and stdout as asyncio streams, with stdout kept for the protocol alone.

:func:`protect_stdout` moves the protocol to a private copy of fd 1 and points fd 1 and
``sys.stdout`` at stderr: a stray ``print``, a library's warning or a child that inherits fd 1
writes to stderr and can never corrupt a protocol line.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys

__all__ = ["BlockingWriter", "open_streams", "protect_stdout"]


def protect_stdout() -> int:
    """Return a private fd for the protocol; fd 1 and sys.stdout now go to stderr."""
    sys.stdout.flush()
    protocol_fd = os.dup(1)
    os.set_inheritable(protocol_fd, False)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return protocol_fd


class BlockingWriter:
    """For an output that epoll cannot watch (a regular file): plain blocking writes."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "wb", buffering=0)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[self._file.write(view) or 0 :]

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self._file.close()


def _pollable(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


async def open_streams(
    in_fd: int, out_fd: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter | BlockingWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    if _pollable(in_fd):
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(in_fd, "rb", buffering=0)
        )
    else:  # a regular file: read it all in a worker, it cannot block for long
        data = await asyncio.to_thread(_read_all, in_fd)
        reader.feed_data(data)
        reader.feed_eof()
    writer: asyncio.StreamWriter | BlockingWriter
    if _pollable(out_fd):
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(out_fd, "wb", buffering=0)
        )
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
    else:
        writer = BlockingWriter(out_fd)
    return reader, writer


def _read_all(fd: int) -> bytes:
    with os.fdopen(fd, "rb") as f:
        return f.read()
