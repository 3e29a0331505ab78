"""A scripted Responses-API model server on 127.0.0.1.

It lets the real codex binary run real turns offline: codex POSTs ``/v1/responses`` and the server
answers with server-sent events built from a script. Every request body is recorded, so tests can
assert on exactly what the model was sent.

The server speaks just enough HTTP/1.1 for codex (reqwest): one request per connection, answered
with ``Connection: close``. It runs on its own event loop in a daemon thread, so synchronous code
(pytest, the ``--demo`` commands, benchmarks that time a bare ``codex exec``) can use it as well as
asyncio code.

Replies:

* :class:`Message` - an assistant message, streamed as ``response.output_text.delta`` events (in
  the pieces given, with a pause between them if asked) and then ``response.output_item.done``.
* :class:`FunctionCall` - a ``function_call`` item, with ``namespace`` for MCP tools.
* :class:`CustomToolCall` - a ``custom_tool_call`` (code mode's ``exec``).
* :class:`Reasoning` - a ``reasoning`` item whose summaries stream as
  ``response.reasoning_summary_text.delta`` events.

A server in code mode (``code_mode``, as a test answering as a code-mode catalog model such as
gpt-6.1-sol sets it) sends a :class:`FunctionCall` the way such a model calls a tool: an ``exec``
whose JavaScript calls it and returns its result as text (:meth:`FunctionCall.as_code_mode`).
* :class:`Failed` - a ``response.failed`` event.
* :class:`HttpError` - a plain HTTP error status.
* :class:`Hang` - accept the request and never answer.
* :class:`Wait` - answer once a test says so (a barrier).

A reply is a list of these output items (several calls in one response), or one of them. Replies
queued with :meth:`ScriptedModelServer.enqueue` are used first, in order; after that the
``script`` callable decides (by default :func:`echo_script`).

An account's limits, as the real service enforces them: ``max_in_flight=K`` answers a request that
comes while K are being answered with HTTP 429 ``rate_limit_exceeded`` (recorded in
:attr:`ScriptedModelServer.refused`, not in ``requests``; :attr:`~ScriptedModelServer.peak_in_flight`
is the most it answered at once); ``rate_limit_headers`` go with every answer (codex reads its
account's rate limits from ``x-codex-primary-*`` headers).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from ..events import Usage

__all__ = [
    "CustomToolCall",
    "Failed",
    "FunctionCall",
    "Hang",
    "HttpError",
    "Message",
    "Reasoning",
    "Reply",
    "ResponsesRequest",
    "ScriptedModelServer",
    "Wait",
    "echo_script",
    "scripted_codex_home",
    "write_codex_home",
]

DEFAULT_USAGE = Usage(100, 0, 10, 0)
# What the service answers a request beyond an account's concurrent streams.
RATE_LIMITED_BODY = json.dumps(
    {
        "error": {
            "type": "rate_limit_exceeded",
            "code": "rate_limit_exceeded",
            "message": "Rate limit reached: too many concurrent requests",
        }
    }
).encode()


def _wire_usage(usage: Usage) -> dict[str, Any]:
    """The Responses API's usage object."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_output_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


@dataclass(frozen=True)
class Message:
    """``deltas``: the pieces the text is streamed in (default: the whole text as one piece);
    ``delay_s``: the pause before each piece after the first."""

    text: str
    deltas: tuple[str, ...] = ()
    delay_s: float = 0.0
    phase: str | None = None  # "commentary" (an interim message) or "final_answer", as models say

    def __post_init__(self) -> None:
        if self.deltas and "".join(self.deltas) != self.text:
            raise ValueError("the deltas of a Message must add up to its text")

    def pieces(self) -> tuple[str, ...]:
        return self.deltas or (self.text,)

    def item(self, ids: Iterator[int]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "message",
            "role": "assistant",
            "id": f"msg_{next(ids)}",
            "status": "completed",
            "content": [{"type": "output_text", "text": self.text, "annotations": []}],
        }
        if self.phase is not None:
            out["phase"] = self.phase
        return out


@dataclass(frozen=True)
class FunctionCall:
    name: str
    arguments: str
    call_id: str | None = None
    namespace: str | None = None

    def item(self, ids: Iterator[int]) -> dict[str, Any]:
        n = next(ids)
        out: dict[str, Any] = {
            "type": "function_call",
            "id": f"fc_{n}",
            "call_id": self.call_id or f"call_{n}",
            "name": self.name,
            "arguments": self.arguments,
            "status": "completed",
        }
        if self.namespace is not None:
            out["namespace"] = self.namespace
        return out

    def as_code_mode(self) -> CustomToolCall:
        """The same call as a code-mode model makes it: ``exec`` (namespace ``functions``) whose
        JavaScript calls the tool by its code-mode name (``<namespace>__<name>``, codex
        0.163-0.171) and returns the result as JSON text."""
        name = f"{self.namespace}__{self.name}" if self.namespace else self.name
        script = f"const r = await tools.{name}({self.arguments or '{}'}); text(JSON.stringify(r));"
        return CustomToolCall(script, call_id=self.call_id)


@dataclass(frozen=True)
class CustomToolCall:
    input: str
    name: str = "exec"
    call_id: str | None = None
    namespace: str | None = "functions"

    def item(self, ids: Iterator[int]) -> dict[str, Any]:
        n = next(ids)
        out: dict[str, Any] = {
            "type": "custom_tool_call",
            "id": f"ctc_{n}",
            "call_id": self.call_id or f"call_{n}",
            "name": self.name,
            "input": self.input,
            "status": "completed",
        }
        if self.namespace is not None:
            out["namespace"] = self.namespace
        return out


@dataclass(frozen=True)
class Reasoning:
    """A reasoning item with these summaries (each streamed as one delta)."""

    summaries: tuple[str, ...]

    def item(self, ids: Iterator[int]) -> dict[str, Any]:
        return {
            "type": "reasoning",
            "id": f"rs_{next(ids)}",
            "summary": [{"type": "summary_text", "text": text} for text in self.summaries],
        }


@dataclass(frozen=True)
class Failed:
    message: str = "the scripted model failed"
    code: str = "server_error"


@dataclass(frozen=True)
class HttpError:
    status: int = 500
    body: str = '{"error": {"message": "scripted HTTP error", "type": "server_error"}}'


@dataclass(frozen=True)
class Hang:
    """Accept the request and never answer (until the server stops)."""


@dataclass(frozen=True)
class Wait:
    """Answer ``then`` once ``until`` is set (a barrier a test controls; at most ``timeout_s``)."""

    until: threading.Event
    then: OutputItem | Sequence[OutputItem] | Failed | HttpError
    timeout_s: float = 60.0


OutputItem: TypeAlias = Message | FunctionCall | CustomToolCall | Reasoning
Reply: TypeAlias = OutputItem | Sequence[OutputItem] | Failed | HttpError | Hang | Wait


@dataclass
class ResponsesRequest:
    """One request codex sent to the model, as received."""

    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    received_at: float = field(default_factory=time.monotonic)  # when it arrived (monotonic)

    @property
    def input(self) -> list[dict[str, Any]]:
        items = self.body.get("input")
        return items if isinstance(items, list) else []

    @property
    def raw(self) -> str:
        return json.dumps(self.body, ensure_ascii=False)

    def user_texts(self) -> list[str]:
        """Every text of every ``user`` message in the input, in order."""
        out = []
        for item in self.input:
            if item.get("type") == "message" and item.get("role") == "user":
                for part in item.get("content") or []:
                    if isinstance(part, dict) and "text" in part:
                        out.append(str(part["text"]))
        return out

    def last_user_text(self) -> str:
        texts = self.user_texts()
        return texts[-1] if texts else ""

    def assistant_texts(self) -> list[str]:
        out = []
        for item in self.input:
            if item.get("type") == "message" and item.get("role") == "assistant":
                for part in item.get("content") or []:
                    if isinstance(part, dict) and "text" in part:
                        out.append(str(part["text"]))
        return out

    def items_of_type(self, kind: str) -> list[dict[str, Any]]:
        return [item for item in self.input if item.get("type") == kind]

    def _offered(self) -> list[dict[str, Any]]:
        """The tools offered: the body's ``tools``, and code mode's ``additional_tools`` input
        item (codex 0.163-0.171 send a code-mode model its tools there, not in ``tools``)."""
        tools = list(self.body.get("tools") or [])
        for item in self.items_of_type("additional_tools"):
            tools.extend(item.get("tools") or [])
        return [t for t in tools if isinstance(t, dict)]

    def tool_names(self) -> list[str]:
        """Names of the tools offered, namespaces flattened as ``namespace.name``."""
        names: list[str] = []
        for tool in self._offered():
            if tool.get("type") == "namespace":
                ns = tool.get("name", "")
                names.extend(f"{ns}.{t.get('name')}" for t in tool.get("tools") or [])
            else:
                names.append(str(tool.get("name")))
        return names

    def exec_description(self) -> str:
        """The description of code mode's ``exec`` tool ("" without code mode)."""
        for tool in self._offered():
            for inner in [tool, *(tool.get("tools") or [])]:
                if isinstance(inner, dict) and inner.get("name") == "exec":
                    return str(inner.get("description", ""))
        return ""

    def exec_tool_names(self) -> list[str]:
        """The tools code mode's ``exec`` declares to the model (``declare const tools: {
        name(…`` in its description, codex 0.163-0.171)."""
        return re.findall(r"declare const tools: \{ *([A-Za-z0-9_$]+)\(", self.exec_description())

    def offers(self, name: str, namespace: str | None = None) -> bool:
        """Is the tool in this request, as a tool or in code mode's ``exec`` declaration?"""
        direct = f"{namespace}.{name}" if namespace else name
        in_exec = f"{namespace}__{name}" if namespace else name
        return direct in self.tool_names() or in_exec in self.exec_tool_names()

    def tool_outputs(self) -> dict[str, str]:
        """call_id → the text of each tool output the model was sent (function or custom)."""
        out = {}
        for item in self.input:
            if item.get("type") in ("function_call_output", "custom_tool_call_output"):
                value = item.get("output")
                if isinstance(value, list):
                    value = "\n".join(str(p.get("text", "")) for p in value if isinstance(p, dict))
                out[str(item.get("call_id"))] = str(value)
        return out


def echo_script(request: ResponsesRequest) -> Reply:
    """The default script: answer ``echo: <the last user text>`` once the tools have been called."""
    return Message("echo: " + request.last_user_text())


class ScriptedModelServer:
    """See the module docstring. Use as a context manager, or call :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        script: Callable[[ResponsesRequest], Reply] = echo_script,
        usage: Usage | None = None,
        *,
        max_in_flight: int | None = None,
        rate_limit_headers: dict[str, str] | None = None,
    ) -> None:
        self.script = script
        self.usage = usage or DEFAULT_USAGE
        self.code_mode = False  # send FunctionCalls as code mode's exec (see the module docstring)
        self.max_in_flight = max_in_flight
        self.rate_limit_headers = dict(rate_limit_headers or {})
        self.requests: list[ResponsesRequest] = []
        self.refused: list[ResponsesRequest] = []  # 429s for being over max_in_flight
        self.in_flight = 0
        self.peak_in_flight = 0
        self._queue: list[Reply] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._hung: list[asyncio.StreamWriter] = []
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ScriptedModelServer:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._server = loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 30)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="scripted-model-server", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("scripted model server did not start")
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def close() -> None:
            server.close()
            for writer in self._hung:
                writer.close()
            # Replies still being written (a paced one whose client went away): ended here, not
            # left for the loop's close to report as destroyed while pending.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread:
            self._thread.join(10)
        self._loop = self._server = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting ---------------------------------------------------------------------------
    def enqueue(self, *replies: Reply) -> None:
        with self._lock:
            self._queue.extend(replies)

    def _next_reply(self, request: ResponsesRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.pop(0)
        return self.script(request)

    # -- HTTP --------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in header_lines:
                if ":" in line:
                    key, value = line.split(":", 1)
                    headers[key.strip().lower()] = value.strip()
            body = await self._read_body(reader, headers)
            method, path, _ = request_line.split(" ", 2)
            if method != "POST" or not path.rstrip("/").endswith("/responses"):
                await self._send(writer, 404, "application/json", b'{"error": "not found"}')
                return
            request = ResponsesRequest(json.loads(body or b"{}"), headers)
            if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
                self.refused.append(request)
                await self._send(writer, 429, "application/json", RATE_LIMITED_BODY)
                return
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                await self._answer(writer, request)
            finally:
                self.in_flight -= 1
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        except asyncio.CancelledError:  # the server stops (Python 3.11's stream callback would
            return  # log a cancelled handler as an error)
        if not writer.is_closing():
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, request: ResponsesRequest) -> None:
        reply = self._next_reply(request)
        if isinstance(reply, Hang):
            self._hung.append(writer)
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()  # in flight until codex gives up or the server stops
            return
        if isinstance(reply, Wait):
            await asyncio.to_thread(reply.until.wait, reply.timeout_s)
            reply = reply.then
        if isinstance(reply, HttpError):
            await self._send(writer, reply.status, "application/json", reply.body.encode())
            return
        await self._stream(writer, reply)

    async def _read_body(self, reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return b"".join(chunks)
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
        return b""

    async def _send(
        self, writer: asyncio.StreamWriter, status: int, content_type: str, payload: bytes
    ) -> None:
        head = (
            f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
            f"content-type: {content_type}\r\ncontent-length: {len(payload)}\r\n"
            f"{self._extra_headers()}connection: close\r\n\r\n"
        )
        writer.write(head.encode() + payload)
        await writer.drain()

    def _extra_headers(self) -> str:
        return "".join(f"{k}: {v}\r\n" for k, v in self.rate_limit_headers.items())

    async def _stream(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        """The reply as server-sent events. A reply that pauses (a message with ``delay_s``) is
        written as it happens, on a response without a length that ends with the connection;
        any other is written at once with its length (codex 0.163 reads a long unframed stream
        in time that grows with the square of its size: 16 MiB took a minute)."""
        chunks: list[bytes] = []
        paced = False

        def send(name: str, data: dict[str, Any]) -> None:
            payload = json.dumps({"type": name, **data})
            chunks.append(f"event: {name}\ndata: {payload}\n\n".encode())

        async def flush() -> None:
            writer.write(b"".join(chunks))
            chunks.clear()
            await writer.drain()

        response_id = f"resp_{next(self._ids)}"
        send("response.created", {"response": {"id": response_id}})
        if isinstance(reply, Failed):
            error = {"code": reply.code, "message": reply.message}
            send("response.failed", {"response": {"id": response_id, "error": error}})
        else:
            items = [reply] if isinstance(reply, OutputItem) else list(reply)  # type: ignore[arg-type]
            paced = any(isinstance(i, Message) and i.delay_s > 0 for i in items)
            if paced:
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    + self._extra_headers().encode()
                    + b"connection: close\r\n\r\n"
                )
            if self.code_mode:
                items = [i.as_code_mode() if isinstance(i, FunctionCall) else i for i in items]
            for index, item in enumerate(items):
                wire = item.item(self._ids)
                if isinstance(item, Message):
                    added = {**wire, "status": "in_progress", "content": []}
                    send("response.output_item.added", {"output_index": index, "item": added})
                    where = {"item_id": wire["id"], "output_index": index, "content_index": 0}
                    for n, piece in enumerate(item.pieces()):
                        if n and item.delay_s:
                            await flush()
                            await asyncio.sleep(item.delay_s)
                        send("response.output_text.delta", {**where, "delta": piece})
                    send("response.output_text.done", {**where, "text": item.text})
                elif isinstance(item, Reasoning):
                    added = {**wire, "summary": []}
                    send("response.output_item.added", {"output_index": index, "item": added})
                    for n, text in enumerate(item.summaries):
                        where = {"item_id": wire["id"], "output_index": index, "summary_index": n}
                        part = {"type": "summary_text", "text": ""}
                        send("response.reasoning_summary_part.added", {**where, "part": part})
                        send("response.reasoning_summary_text.delta", {**where, "delta": text})
                        send("response.reasoning_summary_text.done", {**where, "text": text})
                send("response.output_item.done", {"output_index": index, "item": wire})
            usage = _wire_usage(self.usage)
            send("response.completed", {"response": {"id": response_id, "usage": usage}})
        if paced:
            await flush()
        else:
            await self._send(writer, 200, "text/event-stream", b"".join(chunks))


def write_codex_home(
    codex_home: Path,
    base_url: str,
    *,
    extra_toml: str = "",
    top_toml: str = "",
    model: str = "scripted-model",
) -> Path:
    """Write a ``config.toml`` that points codex at a scripted server, with no retries.

    ``model``: the name codex runs; a catalog model's slug (``codex debug models``) makes codex
    treat the scripted server as that model (its tools, code mode, instructions: codex 0.163+
    applies a catalog model's metadata to a custom provider's model of the same name).

    codex retries a failing model five times with backoff (6 s for ``response.failed``, 25 s for
    HTTP 500) unless the provider sets ``request_max_retries`` and ``stream_max_retries`` to 0.
    ``extra_toml`` goes into the provider's table, ``top_toml`` before it (top-level keys).
    """
    codex_home.mkdir(parents=True, exist_ok=True)
    config = codex_home / "config.toml"
    config.write_text(
        top_toml + 'model_provider = "scripted"\n'
        f'model = "{model}"\n'
        "[model_providers.scripted]\n"
        'name = "scripted"\n'
        f'base_url = "{base_url}"\n'
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n" + extra_toml
    )
    return config


@contextmanager
def scripted_codex_home(
    codex_home: Path, script: Callable[[ResponsesRequest], Reply] = echo_script
) -> Iterator[ScriptedModelServer]:
    """A started server and a CODEX_HOME pointed at it."""
    with ScriptedModelServer(script) as server:
        write_codex_home(codex_home, server.base_url)
        yield server
