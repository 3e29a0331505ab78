"""The plugin's end of one agent's bridge: a unix socket the agent's ``mcp-host`` relays connect to.

A relay first presents ``{"agent_id": ..., "key": ...}``: the agent's secret, random per agent and
per plugin run, which only the codex serving that agent was given (the path of its 0600 key file,
beside the socket, in the MCP server's environment). Anything else is refused (``{"ok": false}``),
an agent id alone included: any process that can reach the socket knows agent ids. The key is
compared in constant time and never logged. Then MCP is served on the connection
(:mod:`.mcp_session`) with the :class:`~.calls.ToolSession` that is current when the relay
connects. The socket file is 0600 in a 0700 folder of the plugin's user.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from .calls import ToolSession
from .names import ensure_socket_dir, key_path, write_key

__all__ = ["BridgeListener"]

log = logging.getLogger(__name__)

_HELLO_TIMEOUT_S = 5.0
_HELLO_MAX = 64 * 1024


class BridgeListener:
    def __init__(
        self, path: Path, agent_id: str, session: Callable[[], ToolSession], *, key: str
    ) -> None:
        self.path = path
        self.agent_id = agent_id
        self.session = session
        self._key = key.encode()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.refused = 0

    @property
    def listening(self) -> bool:
        return self._server is not None

    @property
    def key_path(self) -> Path:
        return key_path(self.path)

    async def start(self) -> None:
        ensure_socket_dir(self.path.parent)
        write_key(self.key_path, self._key)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a plugin that was killed
        old_umask = os.umask(0o177)  # the socket is created 0600: no window where it is wider
        try:
            self._server = await asyncio.start_unix_server(
                self._on_connection, path=str(self.path), limit=1 << 20
            )
        finally:
            os.umask(old_umask)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for path in (self.path, self.key_path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            self._server = None

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_HELLO_TIMEOUT_S):
                line = await reader.readuntil(b"\n")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            log.warning("a bridge connection sent no hello")
            return
        try:
            hello = json.loads(line[:_HELLO_MAX])
        except ValueError:
            hello = None
        presented = hello.get("agent_id") if isinstance(hello, dict) else None
        key = hello.get("key") if isinstance(hello, dict) else None
        proved = isinstance(key, str) and hmac.compare_digest(
            key.encode("utf-8", "replace"), self._key
        )
        if presented != self.agent_id or not proved:
            self.refused += 1
            log.warning(
                "refused a bridge presenting agent %r %s on the socket of agent %r",
                presented,
                "with a wrong key" if key is not None else "without a key",
                self.agent_id,
            )
            answer = {"ok": False, "error": "this bridge did not prove that it serves this agent"}
            writer.write(json.dumps(answer).encode() + b"\n")
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            return
        writer.write(b'{"ok": true}\n')
        await writer.drain()
        from .mcp_session import serve_mcp  # the SDK, imported once, on the first tool turn

        await serve_mcp(reader, writer, self.session())
