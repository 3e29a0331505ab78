"""The plugin side of protocol.md: the host's requests, mapped onto the provider.

``initialize`` must come first (-32002 before it); ``turn/start`` answers when the turn has ended,
after every ``turn/event`` notification of that turn; ``turn/cancel`` and ``shutdown`` stop turns;
``session/consume`` rewrites a session. The host learns of failures as JSON-RPC errors (bad
requests) or as the turn's ``error`` (everything that happens once a turn runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from pathlib import Path
from typing import Any

from .. import __version__
from ..codex.writer_lock import ThreadBusyError
from ..config import HostConfig
from ..errors import (
    AgentBusyError,
    ConfigError,
    InvalidRequestError,
    ProviderError,
    SessionFormatError,
)
from ..events import event_to_dict
from ..jsonrpc import (
    AGENT_BUSY,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_INITIALIZED,
    Connection,
    ConnectionClosed,
    JsonRpcError,
)
from ..provider import CodexProvider
from ..requests import (
    AgentContext,
    ToolCallRequest,
    ToolOutput,
    ToolSpec,
    TurnRequest,
    last_user_message,
)
from ..turn import Turn
from .params import (
    ConsumeParams,
    InitializeParams,
    TurnCancelParams,
    TurnStartParams,
    parse_params,
)

__all__ = ["PROTOCOL_VERSION", "PluginServer"]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
PLUGIN_NAME = "plexum-openai-provider"


class PluginServer:
    """Handles the host's requests on one connection (see :meth:`handle`)."""

    def __init__(self, *, env: dict[str, str] | None = None) -> None:
        self._env = env
        self.provider: CodexProvider | None = None
        self.connection: Connection | None = None
        self._initializing: asyncio.Task[CodexProvider] | None = None
        self._turns: dict[str, Turn] = {}
        # Ids of turns that have ended, so that a cancel racing with the end is not an error.
        self._ended: deque[str] = deque(maxlen=4096)
        self.shutdown_requested = asyncio.Event()

    def attach(self, connection: Connection) -> None:
        self.connection = connection

    async def handle(self, method: str, params: Any, is_notification: bool) -> Any:
        if method == "initialize":
            return await self._initialize(params)
        if method == "shutdown":
            self.shutdown_requested.set()
            return {}
        handler = _METHODS.get(method)
        if handler is None:
            raise JsonRpcError(METHOD_NOT_FOUND, f"method not found: {method}")
        provider = await self._ready()
        return await handler(self, provider, params)

    async def _ready(self) -> CodexProvider:
        # A request sent right after initialize (without waiting for its answer) waits for it.
        if self.provider is None and self._initializing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._initializing)
        if self.provider is None:
            raise JsonRpcError(NOT_INITIALIZED, "not initialized: send initialize first")
        return self.provider

    # -- initialize ----------------------------------------------------------------------------
    async def _initialize(self, raw: Any) -> dict[str, Any]:
        if self.provider is not None or self._initializing is not None:
            raise JsonRpcError(INVALID_REQUEST, "initialize was already received")
        params = parse_params(InitializeParams, raw)
        if params.protocol_version != PROTOCOL_VERSION:
            raise JsonRpcError(
                INVALID_PARAMS,
                f"protocol_version {params.protocol_version} is not supported (this plugin"
                f" speaks {PROTOCOL_VERSION})",
                {"field": "protocol_version"},
            )
        self._initializing = asyncio.create_task(self._create_provider(params.config))
        try:
            provider = await self._initializing
        except ConfigError as exc:
            self._initializing = None
            raise JsonRpcError(
                INVALID_PARAMS, exc.message, {"field": f"config.{exc.key}"}
            ) from None
        except ProviderError as exc:
            self._initializing = None
            raise JsonRpcError(INVALID_PARAMS, exc.message, {"code": exc.code}) from None
        self.provider = provider
        host = params.host_info or {}
        log.info(
            "initialized by %s %s; codex %s at %s",
            host.get("name", "a host"),
            host.get("version", ""),
            provider.binary.version,
            provider.binary.path,
        )
        return {
            "protocol_version": PROTOCOL_VERSION,
            "plugin_info": {"name": PLUGIN_NAME, "version": __version__},
            "models": [{"id": model} for model in provider.models],
            "capabilities": {
                "agent_context": True,
                "host_tools": True,
                "consume": True,
                "cancel": True,
            },
            "codex": {"path": provider.binary.path, "version": provider.binary.version},
        }

    async def _create_provider(self, config: dict[str, Any] | None) -> CodexProvider:
        return await CodexProvider.create(
            HostConfig.parse(config), env=self._env, tool_handler=self._call_host_tool
        )

    async def _call_host_tool(self, call: ToolCallRequest) -> ToolOutput:
        """``host/call_tool``; the bridge bounds it by ``tool_timeout_s``."""
        assert self.connection is not None
        try:
            result = await self.connection.request(
                "host/call_tool",
                {
                    "turn_id": call.turn_id,
                    "agent_id": call.agent_id,
                    "name": call.name,
                    "arguments": call.arguments,
                },
            )
        except JsonRpcError as exc:
            return ToolOutput(f"the host failed the tool call: {exc.message}", is_error=True)
        except ConnectionClosed:
            return ToolOutput("the host is gone", is_error=True)
        return _tool_output(result)

    # -- turns ---------------------------------------------------------------------------------
    async def _turn_start(self, provider: CodexProvider, raw: Any) -> dict[str, Any]:
        params = parse_params(TurnStartParams, raw)
        try:
            prompt = last_user_message(params.messages)
            request = TurnRequest(
                AgentContext(params.agent.id, Path(params.agent.workspace)),
                prompt,
                model=params.model,
                turn_id=params.turn_id,
                tools=tuple(
                    ToolSpec(t.name, t.description, dict(t.input_schema))
                    for t in params.tools or ()
                ),
            )
            turn = provider.start_turn(request)
        except AgentBusyError as exc:
            raise JsonRpcError(AGENT_BUSY, exc.message, {"agent_id": exc.agent_id}) from None
        except InvalidRequestError as exc:
            raise JsonRpcError(
                INVALID_PARAMS, f"invalid params: {exc.field}: {exc.message}", {"field": exc.field}
            ) from None
        self._turns[turn.turn_id] = turn
        connection = self.connection
        assert connection is not None
        async for event in turn:
            try:
                await connection.notify(
                    "turn/event", {"turn_id": turn.turn_id, "event": event_to_dict(event)}
                )
            except ConnectionClosed:
                turn.cancel("the host closed the connection")
        result = await turn.result()
        del self._turns[turn.turn_id]
        self._ended.append(turn.turn_id)
        return result.to_wire()

    async def _turn_cancel(self, provider: CodexProvider, raw: Any) -> dict[str, Any]:
        params = parse_params(TurnCancelParams, raw)
        turn = self._turns.get(params.turn_id)
        if turn is None and params.turn_id in self._ended:
            return {}
        if turn is None:
            raise JsonRpcError(
                INVALID_PARAMS, f"unknown turn_id {params.turn_id!r}", {"field": "turn_id"}
            )
        turn.cancel("cancelled by the host")
        return {}

    async def _consume(self, provider: CodexProvider, raw: Any) -> dict[str, Any]:
        params = parse_params(ConsumeParams, raw)
        agent = AgentContext(params.agent.id, Path(params.agent.workspace))
        try:
            result = await provider.consume(agent, params.block_ids, params.marker)
        except InvalidRequestError as exc:
            raise JsonRpcError(
                INVALID_PARAMS, f"invalid params: {exc.field}: {exc.message}", {"field": exc.field}
            ) from None
        except SessionFormatError as exc:
            raise JsonRpcError(INTERNAL_ERROR, exc.message, {"path": exc.path}) from None
        except ThreadBusyError as exc:
            raise JsonRpcError(INTERNAL_ERROR, str(exc)) from None
        return {"consumed": result.consumed, "not_found": result.not_found}

    async def shutdown(self) -> None:
        """Cancel every running turn and wait for them to wind down (bounded by the stop steps)."""
        if self.provider is not None:
            await self.provider.close()


def _tool_output(result: Any) -> ToolOutput:
    """The text of a host's ``host/call_tool`` result (text parts joined)."""
    if not isinstance(result, dict):
        return ToolOutput(f"the host answered the tool call with {result!r}", is_error=True)
    parts = result.get("content")
    texts = []
    if isinstance(parts, list):
        texts = [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return ToolOutput("\n".join(texts), is_error=result.get("is_error") is True)


_METHODS = {
    "turn/start": PluginServer._turn_start,
    "turn/cancel": PluginServer._turn_cancel,
    "session/consume": PluginServer._consume,
}
