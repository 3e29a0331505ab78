"""The plugin side of protocol.md: the host's requests, mapped onto the provider.

``initialize`` must come first (-32002 before it); ``turn/start`` answers when the turn has ended,
after every ``turn/event`` notification of that turn; ``turn/cancel`` and ``shutdown`` stop turns;
``session/consume`` rewrites a session. Handlers are typed (:mod:`.params`) and routed by a
:class:`~.._jsonrpc.Router` whose one error function (:func:`.errors.to_jsonrpc`) turns whatever a
handler raises into the JSON-RPC error the host sees; everything that happens once a turn runs is
the turn's own ``error`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from .._jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    NOT_INITIALIZED,
    Connection,
    ConnectionClosed,
    JsonRpcError,
    Router,
)
from .._version import __version__
from ..config import HostConfig
from ..conversation import parse_messages
from ..events import ACTIVITY_TYPES, BASE_TYPES, event_to_dict
from ..provider import CodexProvider
from ..requests import (
    AgentContext,
    ToolCallRequest,
    ToolOutput,
    ToolSpec,
    TurnRequest,
)
from .errors import to_jsonrpc
from .params import (
    ConsumeParams,
    InitializeParams,
    TurnCancelParams,
    TurnStartParams,
    parse_params,
)
from .tool_reply import tool_output

__all__ = ["PLUGIN_NAME", "PROTOCOL_VERSION", "PluginServer"]

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
PLUGIN_NAME = "plexum-openai-provider"

P = TypeVar("P")


class PluginServer:
    """Handles the host's requests on one connection (:attr:`router` is its handler)."""

    def __init__(self, *, env: dict[str, str] | None = None) -> None:
        self._env = env
        self.provider: CodexProvider | None = None
        self.connection: Connection | None = None
        self._initializing: asyncio.Task[CodexProvider] | None = None
        self._turns: dict[str, Any] = {}
        self._events: frozenset[str] = BASE_TYPES  # what the host asked for (initialize)
        # Ids of turns that have ended, so that a cancel racing with the end is not an error.
        self._ended: deque[str] = deque(maxlen=4096)
        self._sending: set[asyncio.Task[None]] = set()  # notifications not tied to a turn
        self.shutdown_requested = asyncio.Event()
        self.router = Router(to_jsonrpc)
        self.router.add("initialize", self._initialize, self._typed(InitializeParams))
        self.router.add("shutdown", self._shutdown)
        self.router.add("turn/start", self._ready(self._turn_start), self._typed(TurnStartParams))
        self.router.add(
            "turn/cancel", self._ready(self._turn_cancel), self._typed(TurnCancelParams)
        )
        self.router.add("session/consume", self._ready(self._consume), self._typed(ConsumeParams))
        self.router.add("status", self._status)
        self._started_at = time.time()

    def attach(self, connection: Connection) -> None:
        self.connection = connection

    @staticmethod
    def _typed(model: type[Any]) -> Callable[[Any], Any]:
        return lambda params: parse_params(model, params)

    def _ready(self, handler: Callable[[P], Awaitable[Any]]) -> Callable[[P], Awaitable[Any]]:
        """The handler, once initialize has succeeded (-32002 before)."""

        async def run(params: P) -> Any:
            # A request sent right after initialize (without waiting for its answer) waits for it.
            if self.provider is None and self._initializing is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._initializing)
            if self.provider is None:
                raise JsonRpcError(NOT_INITIALIZED, "not initialized: send initialize first")
            return await handler(params)

        return run

    # -- initialize ----------------------------------------------------------------------------
    async def _initialize(self, params: InitializeParams) -> dict[str, Any]:
        if self.provider is not None or self._initializing is not None:
            raise JsonRpcError(INVALID_REQUEST, "initialize was already received")
        events = BASE_TYPES
        for i, name in enumerate(params.events or ()):
            if name not in BASE_TYPES | ACTIVITY_TYPES:
                raise JsonRpcError(
                    INVALID_PARAMS,
                    f"unknown event type {name!r} (known: {', '.join(sorted(ACTIVITY_TYPES))})",
                    {"field": f"events[{i}]"},
                )
            events = events | {name}
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
        except BaseException:
            self._initializing = None
            raise
        self.provider = provider
        self._events = events
        provider.on_rate_limits = self._rate_limits
        host = params.host_info or {}
        binary = provider.binary
        log.info(
            "initialized by %s %s; codex %s at %s, engine %s",
            host.get("name", "a host"),
            host.get("version", ""),
            binary.version if binary else "?",
            binary.path if binary else "?",
            provider.engine_info.name,
        )
        engine = provider.engine_info
        return {
            "protocol_version": PROTOCOL_VERSION,
            "plugin_info": {"name": PLUGIN_NAME, "version": __version__},
            "models": [{"id": model} for model in provider.models],
            # What the codex in use offers (a turn may name one as its model) and each one's
            # reasoning efforts (a turn's `effort`).
            "codex_models": [model.describe() for model in provider.codex_models],
            "capabilities": {
                "agent_context": True,
                "host_tools": True,
                "consume": True,
                "cancel": True,
            },
            "codex": {
                "path": binary.path if binary else None,
                "version": binary.version if binary else None,
                # The whole suite passed on this version (tools/check-codex); a newer one is
                # run when its probe passes, and said so.
                "verified": engine.codex_verified,
                "newer_than_verified": engine.newer_than_verified,
            },
            # The first account's (as `login`): each account's is in `accounts`.
            "engine": engine.describe(),
            "events": sorted(events),
            "sandbox": provider.policy.describe(),
            # What each confined agent's commands may use, and what enforces it here.
            "limits": (
                provider.limiter.describe()
                if provider.limiter is not None and provider.policy.confined
                else None
            ),
            # How codex authenticates (never a secret): a host can say "log in" before a turn fails.
            # The first account's login: each account's is in `accounts`.
            "login": provider.login.describe(),
            # Each account's login, engine and admission (how many turns run at once, running,
            # waiting).
            "accounts": provider.accounts(),
        }

    async def _create_provider(self, config: dict[str, Any] | None) -> CodexProvider:
        return await CodexProvider.create(
            HostConfig.parse(config), env=self._env, tool_handler=self._call_host_tool
        )

    def _rate_limits(self, params: dict[str, Any]) -> None:
        """``account/rate_limits``: what codex reported of an account's rate limits."""
        connection = self.connection
        if connection is None:
            return

        async def send() -> None:
            with contextlib.suppress(ConnectionClosed):
                await connection.notify("account/rate_limits", params)

        task = asyncio.ensure_future(send())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

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
        return tool_output(call.name, result)

    # -- turns ---------------------------------------------------------------------------------
    async def _turn_start(self, params: TurnStartParams) -> dict[str, Any]:
        provider = self.provider
        assert provider is not None and self.connection is not None
        request = TurnRequest(
            AgentContext(params.agent.id, Path(params.agent.workspace)),
            messages=parse_messages(params.messages),
            model=params.model,
            effort=params.effort,
            turn_id=params.turn_id,
            tools=tuple(
                ToolSpec(t.name, t.description, dict(t.input_schema)) for t in params.tools or ()
            ),
            events=self._events,
            traceparent=params.traceparent,
        )
        turn = await provider.start_turn(request, cast(Any, params.when_busy or "refuse"))
        self._turns[turn.turn_id] = turn
        try:
            async for event in turn:
                try:
                    await self.connection.notify(
                        "turn/event", {"turn_id": turn.turn_id, "event": event_to_dict(event)}
                    )
                except ConnectionClosed:
                    turn.cancel("the host closed the connection")
            result = await turn.result()
        finally:
            del self._turns[turn.turn_id]
            self._ended.append(turn.turn_id)
        return result.to_wire()

    async def _turn_cancel(self, params: TurnCancelParams) -> dict[str, Any]:
        turn = self._turns.get(params.turn_id)
        if turn is None and params.turn_id in self._ended:
            return {}
        if turn is None:
            raise JsonRpcError(
                INVALID_PARAMS, f"unknown turn_id {params.turn_id!r}", {"field": "turn_id"}
            )
        turn.cancel("cancelled by the host")
        return {}

    async def _consume(self, params: ConsumeParams) -> dict[str, Any]:
        assert self.provider is not None
        agent = AgentContext(params.agent.id, Path(params.agent.workspace))
        result = await self.provider.consume(agent, params.block_ids, params.marker)
        return {"consumed": result.consumed, "not_found": result.not_found}

    async def _status(self, params: Any) -> dict[str, Any]:
        return self.status()

    def status(self) -> dict[str, Any]:
        """What the plugin is doing now (the ``status`` request, and its control socket)."""
        out: dict[str, Any] = {
            "plugin": {
                "pid": os.getpid(),
                "version": __version__,
                "since": self._started_at,
                "uptime_s": round(time.time() - self._started_at, 1),
            },
            "initialized": self.provider is not None,
        }
        if self.provider is not None:
            out.update(self.provider.status())
            binary = self.provider.binary
            out["codex"] = {"version": binary.version if binary else None}
        return out

    async def _shutdown(self, params: Any) -> dict[str, Any]:
        self.shutdown_requested.set()
        return {}

    async def shutdown(self) -> None:
        """Cancel every running turn and wait for them to wind down (bounded by the stop steps)."""
        if self._initializing is not None and self.provider is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._initializing), 30)
        if self.provider is not None:
            await self.provider.close()
