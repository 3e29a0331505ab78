"""Wires the bridge into turns: registration on an agent's first turn, and for a turn with tools
the socket listener and the ``-c`` overrides that enable the agent's own server for that run."""

from __future__ import annotations

import asyncio
import importlib
import logging
from pathlib import Path
from typing import Any

from ..events import Notice
from ..requests import ToolCallRequest, ToolHandler, ToolOutput
from ..turn import Turn
from .listener import BridgeListener
from .names import server_name, socket_path
from .registration import Registrar, Registration, bridge_command, enable_overrides

__all__ = ["BridgeManager"]

log = logging.getLogger(__name__)


class BridgeManager:
    def __init__(
        self,
        codex: str,
        codex_home: Path,
        env: dict[str, str],
        tool_timeout_s: float,
        tool_handler: ToolHandler | None,
        *,
        socket_dir: Path | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.registrar = Registrar(codex, codex_home, env)
        self.codex_home = codex_home
        self.tool_timeout_s = tool_timeout_s
        self.tool_handler = tool_handler
        self.socket_dir = socket_dir
        self.command = tuple(command or bridge_command())
        self._registered: set[str] = set()
        self._preload: asyncio.Future[Any] | None = None
        self._background: set[asyncio.Task[None]] = set()

    def preload(self) -> None:
        """Import the MCP SDK in the background (about 0.9 s) before the first tool turn needs it."""
        if self._preload is None:
            self._preload = asyncio.ensure_future(
                asyncio.to_thread(
                    importlib.import_module, "plexum_openai_provider.bridge.mcp_session"
                )
            )

    def registration(self, agent_id: str) -> Registration:
        return Registration(
            name=server_name(agent_id),
            agent_id=agent_id,
            socket=socket_path(agent_id, self.codex_home, self.socket_dir),
            command=self.command,
        )

    def attach(self, turn: Turn) -> None:
        request = turn.request
        agent_id = request.agent.id
        registration = self.registration(agent_id)
        listener: BridgeListener | None = None
        if request.tools:
            if self.tool_handler is None:
                raise RuntimeError("a turn with tools needs a provider with a tool_handler")
            handler = self.tool_handler

            async def call_tool(name: str, arguments: dict[str, Any]) -> ToolOutput:
                return await self._call(
                    handler, ToolCallRequest(turn.turn_id, agent_id, name, arguments)
                )

            listener = BridgeListener(registration.socket, agent_id, request.tools, call_tool)

        async def register() -> None:
            try:
                await self.registrar.ensure(registration)
            except Exception as exc:
                if listener is not None:
                    raise
                log.warning("registering the bridge of agent %r failed: %s", agent_id, exc)
                turn.emit(Notice("bridge_unavailable", f"host tools are unavailable: {exc}"))

        async def before() -> None:
            if listener is None:
                # This run does not enable the bridge: register on the side (the agent's first
                # turn pays no `codex mcp add`), ready for a later turn with tools.
                if self.registrar.needs_check(registration):
                    task = asyncio.create_task(register())
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                return
            await register()
            if self._preload is not None:
                await self._preload
            await listener.start()

        async def close() -> None:
            if listener is not None:
                await listener.close()

        turn.hooks.before = before
        turn.hooks.close = close
        if listener is not None:
            turn.hooks.config_overrides = enable_overrides(registration.name, self.tool_timeout_s)

    async def drain(self, timeout: float = 10.0) -> None:
        """Let registrations running on the side finish (at shutdown)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout)

    async def _call(self, handler: ToolHandler, call: ToolCallRequest) -> ToolOutput:
        try:
            async with asyncio.timeout(self.tool_timeout_s):
                return await handler(call)
        except TimeoutError:
            return ToolOutput(
                f"the host did not answer tool {call.name!r} within {self.tool_timeout_s:g} s",
                is_error=True,
            )
        except Exception as exc:
            log.warning("host tool %s failed: %s", call.name, exc)
            return ToolOutput(f"the host tool {call.name!r} failed: {exc}", is_error=True)
