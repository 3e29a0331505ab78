"""The host side of protocol.md: spawn a plugin process and drive it.

::

    async with await PluginClient.spawn(tools={"get_time": lambda args: "12:00"}) as plugin:
        await plugin.initialize({"idle_timeout_s": 120})
        turn = plugin.start_turn("t-1", AgentContext("cx", workspace), "hello",
                                 tools=[ToolSpec("get_time")])
        async for event in turn:
            ...
        result = await turn.result()

``host/call_tool`` requests from the plugin are answered from ``tools`` (name → a function of the
arguments returning a string or a :class:`ToolOutput`, sync or async); an exception becomes a
JSON-RPC error, which the plugin hands to the model as an error result. A call the plugin calls
off (``$/cancelRequest``: its timeout, the turn's end) is cancelled, if it is async.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from .._io.framing import read_lines
from .._jsonrpc import CALL_OFF, INVALID_PARAMS, METHOD_NOT_FOUND, Connection, JsonRpcError
from ..events import Event, EventStream, event_from_dict
from ..requests import AgentContext, ToolOutput, ToolSpec, TurnResult

__all__ = ["ClientTurn", "PluginClient", "ToolFunction", "ToolOutput"]

log = logging.getLogger(__name__)


# A tool's answer: text, a ToolOutput, or a dict sent as the reply exactly as it is.
ToolFunction = Callable[
    [dict[str, Any]],
    "str | ToolOutput | dict[str, Any] | Awaitable[str | ToolOutput | dict[str, Any]]",
]


class ClientTurn:
    """One turn as the host sees it: ``async for event in turn`` then ``await turn.result()``."""

    def __init__(self, turn_id: str, stream: EventStream, request: asyncio.Task[Any]) -> None:
        self.turn_id = turn_id
        self._stream = stream
        self._request = request

    def __aiter__(self) -> AsyncIterator[Event]:
        return aiter(self._stream)

    async def result(self) -> TurnResult:
        """The turn's result; raises JsonRpcError if the plugin refused the turn."""
        return TurnResult.from_wire(await asyncio.shield(self._request))


class PluginClient:
    def __init__(
        self, process: asyncio.subprocess.Process, tools: Mapping[str, ToolFunction]
    ) -> None:
        self.process = process
        self.tools = dict(tools)
        self.stderr_tail: deque[str] = deque(maxlen=200)
        self._streams: dict[str, EventStream] = {}
        self.called_off: list[Any] = []  # ids of the tool calls the plugin called off, stopped
        assert process.stdout is not None and process.stdin is not None
        self.connection = Connection(process.stdout, process.stdin, self._handle, name="plugin")
        self._serving = asyncio.create_task(self.connection.serve())
        self._stderr_task = asyncio.create_task(self._read_stderr())
        self.initialize_result: dict[str, Any] | None = None
        self.rate_limits: list[Any] = []  # account/rate_limits notifications, as received

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        tools: Mapping[str, ToolFunction] | None = None,
        cwd: str | None = None,
    ) -> PluginClient:
        """Start the plugin (default: this package's, with this interpreter) on pipes, in a
        session of its own: a Ctrl-C in the host's terminal reaches the host, which cancels a
        turn or ends the plugin through the protocol, and never the plugin itself (it would end
        every turn and the conversation)."""
        argv = list(argv) if argv else [sys.executable, "-m", "plexum_openai_provider", "serve"]
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            limit=1 << 20,
            start_new_session=True,
        )
        return cls(process, tools or {})

    async def __aenter__(self) -> PluginClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests ------------------------------------------------------------------------------
    async def initialize(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        timeout: float = 60.0,
        events: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """``events``: event types wanted beyond today's (``ACTIVITY_TYPES`` for all)."""
        params: dict[str, Any] = {
            "protocol_version": 1,
            "host_info": {"name": "plexum-openai-provider host client", "version": "1"},
        }
        if config is not None:
            params["config"] = dict(config)
        if events is not None:
            params["events"] = list(events)
        result = await self.connection.request("initialize", params, timeout=timeout)
        self.initialize_result = result
        return dict(result)

    def start_turn(
        self,
        turn_id: str,
        agent: AgentContext,
        message: str = "",
        *,
        model: str | None = None,
        effort: str | None = None,
        tools: Sequence[ToolSpec] = (),
        images: Sequence[str] = (),
        system: str | None = None,
        messages: Sequence[Mapping[str, Any]] | None = None,
        when_busy: str | None = None,
        traceparent: str | None = None,
    ) -> ClientTurn:
        """``message`` (with ``images``: absolute paths or data: URLs, and the agent's ``system``
        instructions), or the whole conversation as protocol ``messages``. ``when_busy``:
        ``"steer"`` or ``"queue"`` for an agent whose turn is running (default: refused)."""
        if messages is None:
            content: Any = message
            if images:
                content = [{"type": "text", "text": message}] + [
                    {"type": "image", "url": i}
                    if i.startswith("data:")
                    else {"type": "image", "path": i}
                    for i in images
                ]
            messages = [{"role": "user", "content": content}]
            if system:
                messages = [{"role": "system", "content": system}, *messages]
        params: dict[str, Any] = {
            "turn_id": turn_id,
            "agent": {"id": agent.id, "workspace": str(agent.workspace)},
            "messages": [dict(m) for m in messages],
        }
        if model is not None:
            params["model"] = model
        if effort is not None:
            params["effort"] = effort
        if when_busy is not None:
            params["when_busy"] = when_busy
        if traceparent is not None:
            params["traceparent"] = traceparent
        if tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in tools
            ]
        return self.start_turn_raw(params)

    def start_turn_raw(self, params: dict[str, Any]) -> ClientTurn:
        """``turn/start`` with params exactly as given (tests use it for invalid requests)."""
        turn_id = str(params.get("turn_id"))
        stream = self._streams.setdefault(turn_id, EventStream())

        async def run() -> Any:
            try:
                return await self.connection.request("turn/start", params)
            finally:
                stream.end()
                self._streams.pop(turn_id, None)

        return ClientTurn(turn_id, stream, asyncio.create_task(run()))

    async def cancel(self, turn_id: str) -> None:
        await self.connection.request("turn/cancel", {"turn_id": turn_id}, timeout=30)

    async def consume(
        self, agent: AgentContext, block_ids: Sequence[str], marker: str | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "agent": {"id": agent.id, "workspace": str(agent.workspace)},
            "block_ids": list(block_ids),
        }
        if marker is not None:
            params["marker"] = marker
        return dict(await self.connection.request("session/consume", params))

    async def shutdown(self, timeout: float = 30.0) -> None:
        await self.connection.request("shutdown", {}, timeout=timeout)

    async def close(self, timeout: float = 30.0) -> int:
        """Close the plugin's stdin and wait for it to exit (killed after ``timeout``)."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            log.warning("the plugin did not exit within %s s; killing it", timeout)
            self.process.kill()
            code = await self.process.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(self._serving, self._stderr_task), 5)
        return code

    # -- from the plugin -----------------------------------------------------------------------
    async def _handle(self, method: str, params: Any, is_notification: bool) -> Any:
        if method == "turn/event":
            if isinstance(params, dict) and isinstance(params.get("event"), dict):
                stream = self._streams.get(str(params.get("turn_id")))
                if stream is None:
                    log.warning("an event for unknown turn %r", params.get("turn_id"))
                else:
                    try:
                        stream.put(event_from_dict(params["event"]))
                    except (TypeError, ValueError) as exc:  # a newer plugin's event: skip it
                        log.warning("skipped an event this client does not know: %s", exc)
            return None
        if method == "account/rate_limits":
            self.rate_limits.append(params)
            return None
        if method == "host/call_tool":
            return await self._call_tool(params)
        if method == CALL_OFF:  # the plugin no longer waits for that tool call: stop it
            if isinstance(params, dict) and self.connection.cancel_handling(params.get("id")):
                self.called_off.append(params.get("id"))
            return None
        raise JsonRpcError(METHOD_NOT_FOUND, f"method not found: {method}")

    async def _call_tool(self, params: Any) -> dict[str, Any]:
        if not isinstance(params, dict) or not isinstance(params.get("name"), str):
            raise JsonRpcError(INVALID_PARAMS, "host/call_tool needs a name")
        function = self.tools.get(params["name"])
        if function is None:
            raise JsonRpcError(INVALID_PARAMS, f"the host has no tool {params['name']!r}")
        arguments = params.get("arguments")
        output = function(arguments if isinstance(arguments, dict) else {})
        if inspect.isawaitable(output):
            output = await output
        if isinstance(output, dict):
            return output  # a reply given whole (tests send malformed ones this way)
        if isinstance(output, str):
            output = ToolOutput(output)
        content: list[dict[str, Any]] = [{"type": "text", "text": output.text}]
        content += [
            {"type": "image", "data": image.data, "mime_type": image.mime_type}
            for image in output.images
        ]
        return {"content": content, "is_error": output.is_error}

    async def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        async for line in read_lines(self.process.stderr, max_line=64 * 1024):
            if isinstance(line, bytes):
                self.stderr_tail.append(line.decode("utf-8", errors="replace"))
