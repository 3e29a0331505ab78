"""Host tools for a turn: the MCP server codex is given, and the socket it relays to.

:meth:`BridgeManager.for_turn` returns a :class:`TurnBridge` value: the inline MCP server
definition for codex (no ``config.toml`` registration: codex takes ``mcp_servers.<name>.*`` per
run on exec and per thread on the app-server), and the turn's ``start``/``end``. Each agent that
had a tool turn keeps one listening socket for the life of the provider: codex's app-server keeps
a thread's MCP server (and its relay's connection) across turns, so the socket cannot come and go
with each turn. Calls are routed to the agent's running turn; a call when none runs gets an error.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._codex.command import McpServerSpec
from .._codex.guard import guard
from ..errors import InvalidRequestError
from ..requests import ToolCallRequest, ToolHandler, ToolOutput, ToolSpec
from .calls import ToolSession
from .listener import BridgeListener
from .names import key_path, server_name, socket_path
from .relay import AGENT_ENV, KEY_ENV, SOCKET_ENV, TOOLS_ENV, relay_command

__all__ = ["BridgeManager", "TurnBridge"]

log = logging.getLogger(__name__)


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class TurnBridge:
    """What a turn gets from the bridge (see :class:`~.._turn.runner.BridgeHooks`)."""

    mcp_server: McpServerSpec | None = None
    start: Callable[[], Awaitable[None]] = _nothing
    end: Callable[[], Awaitable[None]] = _nothing


@dataclass
class _Agent:
    listener: BridgeListener
    turn_id: str | None = None
    tools: Sequence[ToolSpec] = field(default_factory=tuple)
    calls: dict[asyncio.Task[ToolOutput], str] = field(default_factory=dict)  # → its turn's id


def tools_revision(tools: Sequence[ToolSpec]) -> str:
    """A digest of a tool list: equal lists, equal digests (an app-server thread loaded with
    another list must be reloaded for the model to see the new one)."""
    data = json.dumps(
        [[t.name, t.description, t.input_schema] for t in tools], sort_keys=True, default=str
    )
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:16]


class BridgeManager:
    def __init__(
        self,
        codex_home: Path,
        tool_timeout_s: float,
        tool_handler: ToolHandler | None,
        *,
        socket_dir: Path | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        self.codex_home = codex_home
        self.tool_timeout_s = tool_timeout_s
        self.tool_handler = tool_handler
        self.socket_dir = socket_dir
        self.command = tuple(command or relay_command())
        self._agents: dict[str, _Agent] = {}
        self._preload: asyncio.Future[Any] | None = None

    def _load_sdk(self) -> asyncio.Future[Any]:
        """Import the MCP SDK in a worker thread, once, when the first tool turn needs it: it
        takes about 0.45 s and 31 MiB here, which a plugin that never serves tools never pays,
        and the event loop keeps serving other agents meanwhile."""
        if self._preload is None:
            self._preload = asyncio.ensure_future(
                asyncio.to_thread(
                    importlib.import_module, "plexum_openai_provider._bridge.mcp_session"
                )
            )
        return self._preload

    def for_turn(self, turn_id: str, agent_id: str, tools: Sequence[ToolSpec]) -> TurnBridge:
        """The turn's bridge; raises BridgeError (a socket path that cannot work) before
        anything runs. A turn without tools gets no MCP server at all."""
        if not tools:
            return TurnBridge()
        if self.tool_handler is None:
            raise InvalidRequestError(
                "this provider has no tool_handler, so it cannot offer tools", field="tools"
            )
        path = socket_path(agent_id, self.codex_home, self.socket_dir)
        spec = McpServerSpec(
            name=server_name(agent_id),
            command=self.command,
            env={
                SOCKET_ENV: str(path),
                AGENT_ENV: agent_id,
                # The path, not the secret: the MCP server's definition is on codex exec's
                # command line (which every user can read) and in logs.
                KEY_ENV: str(key_path(path)),
                # Not read by the relay: it makes the definition change when the tools do.
                TOOLS_ENV: tools_revision(tools),
                # codex gives an MCP server only an allowlist of its environment: the guard's
                # mark must be given explicitly (an orphaned relay is then found and ended).
                **guard().marker("mcp"),
            },
            tool_timeout_s=self.tool_timeout_s + 10,
        )

        async def start() -> None:
            agent = self._agents.get(agent_id)
            if agent is None:
                # Random per agent and per plugin run: what proves a relay serves this agent.
                listener = BridgeListener(
                    path, agent_id, lambda: self._session(agent_id), key=secrets.token_hex(32)
                )
                agent = _Agent(listener)
                self._agents[agent_id] = agent
            agent.turn_id, agent.tools = turn_id, tuple(tools)
            await self._load_sdk()
            if not agent.listener.listening:
                await agent.listener.start()

        async def end() -> None:
            agent = self._agents.get(agent_id)
            if agent is None:
                return
            if agent.turn_id == turn_id:
                agent.turn_id = None
            # The turn is over: whatever the host is still doing for it is called off.
            for task, of_turn in list(agent.calls.items()):
                if of_turn == turn_id:
                    task.cancel()

        return TurnBridge(spec, start, end)

    def _session(self, agent_id: str) -> ToolSession:
        agent = self._agents[agent_id]

        async def call_tool(name: str, arguments: dict[str, Any]) -> ToolOutput:
            turn_id = agent.turn_id
            if turn_id is None or self.tool_handler is None:
                return ToolOutput(
                    f"no turn of agent {agent_id!r} is running: tool {name!r} cannot be called",
                    is_error=True,
                )
            call = ToolCallRequest(turn_id, agent_id, name, arguments)
            task = asyncio.ensure_future(self._call(self.tool_handler, call))
            agent.calls[task] = turn_id
            try:
                return await task
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise  # codex called it off (MCP's notifications/cancelled), or the loop ends
                return ToolOutput(
                    f"turn {turn_id} ended before the host answered tool {name!r}", is_error=True
                )
            finally:
                agent.calls.pop(task, None)

        return ToolSession(agent.tools, call_tool)

    async def close(self) -> None:
        for agent in self._agents.values():
            await agent.listener.close()
        self._agents.clear()

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
