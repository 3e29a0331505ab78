"""One JSON-RPC 2.0 connection: framing, ids, futures for our requests, dispatch of the peer's.

Every incoming request runs in its own task, so a long request (a turn) never blocks others; its
answer is written when it is ready. Writes are serialised, one JSON object per line. Whatever the
peer sends, the connection answers as JSON-RPC says and keeps serving:

* a line that is not JSON (or not UTF-8) → -32700 with id null;
* JSON that is not a request object (an array, a number, ``{}``, a bad ``id`` or ``method``) →
  -32600, with the request's id when it has a valid one, else null;
* a notification (a string ``method`` and no ``id``) is never answered, not even with an error;
* a response whose id we never sent is logged and dropped.

A request we stop waiting for (its timeout, or the caller cancelled) is called off when
``call_off`` is set: a ``$/cancelRequest`` notification names its id (LSP's way; JSON-RPC has
none), and a late answer to it is dropped quietly. :meth:`Connection.cancel_handling` is the other
side: it cancels the handler of a request the peer called off, which is answered -32800.

Strings may hold lone surrogates (``"\\ud800"`` is valid JSON but not valid UTF-8): an answer that
echoes one (an id, a method name) is written with ASCII escapes, so it is still sent and still
valid JSON. ``strict=False`` accepts messages without ``"jsonrpc": "2.0"`` (codex's app-server
omits it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from .._io.framing import OversizeLine, read_lines
from .errors import (
    CALL_OFF,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    REQUEST_CANCELLED,
    ConnectionClosed,
    JsonRpcError,
)

__all__ = ["Connection", "Handler", "NotificationHandler", "Writer"]

log = logging.getLogger(__name__)

# A handler gets (method, params, is_notification) and returns the result or raises JsonRpcError.
Handler = Callable[[str, Any, bool], Awaitable[Any]]
NotificationHandler = Callable[[str, Any], None]


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def close(self) -> None: ...


_MISSING = object()
_CALLED_OFF_KEPT = 1024  # ids of called-off requests remembered, to drop their late answers quietly


class Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: Writer,
        handler: Handler,
        *,
        name: str = "peer",
        strict: bool = True,
        call_off: bool = False,
        on_notification: NotificationHandler | None = None,
    ) -> None:
        self._strict = strict
        # Notifications handled as they are read, in order, without a task each (a turn on
        # app-server is a score of them); else they go to ``handler`` like requests.
        self._on_notification = on_notification
        self._call_off = call_off
        self._reader = reader
        self._writer = writer
        self._handler = handler
        self._name = name
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._called_off: dict[int, None] = {}  # ordered: the oldest are forgotten first
        self._handling: dict[Any, asyncio.Task[None]] = {}  # the peer's requests, by id
        self._peer_called_off: set[Any] = set()
        self._write_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._eof = asyncio.Event()  # the peer closed its end: nothing more will be read
        self._write_closed = False  # our end is closed, or the peer stopped reading

    # -- sending -------------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        params: Any = None,
        *,
        timeout: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Any:
        """Send a request and wait for its answer: the result, or JsonRpcError from the peer.
        ``extra``: members of the request beside its params (a peer's extension, such as codex
        app-server's ``trace``)."""
        if self._eof.is_set() or self._write_closed:
            raise ConnectionClosed(f"{self._name} is gone")
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message: dict[str, Any] = {**(extra or {}), "jsonrpc": "2.0", "id": request_id}
        message["method"] = method
        if params is not None:
            message["params"] = params
        try:
            await self._send(message)
            async with asyncio.timeout(timeout):
                return await future
        except (TimeoutError, asyncio.CancelledError):
            # (Awaiting the future and being cancelled cancels it: unanswered, either way.)
            if self._call_off and (future.cancelled() or not future.done()):
                self._send_call_off(request_id)
            raise
        finally:
            self._pending.pop(request_id, None)

    def _send_call_off(self, request_id: int) -> None:
        self._called_off[request_id] = None
        while len(self._called_off) > _CALLED_OFF_KEPT:
            del self._called_off[next(iter(self._called_off))]
        # In a task of its own: the caller is being cancelled. Tracked, so that a shutdown
        # waits for it (wait_handlers) before the connection closes.
        self._track(asyncio.create_task(self._answer_quietly(CALL_OFF, {"id": request_id})))

    async def _answer_quietly(self, method: str, params: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.notify(method, params)

    def cancel_handling(self, request_id: Any) -> bool:
        """Call off the handler of the peer's request ``request_id`` (it is answered -32800);
        False if no such request is being handled."""
        task = self._handling.get(request_id)
        if task is None or task.done():
            return False
        self._peer_called_off.add(request_id)
        task.cancel()
        return True

    def _handled(self, request_id: Any) -> None:
        self._handling.pop(request_id, None)
        self._peer_called_off.discard(request_id)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message)

    async def _send(self, message: dict[str, Any]) -> None:
        data = _encode(message)
        async with self._write_lock:
            if self._write_closed:
                raise ConnectionClosed(f"{self._name} is gone")
            try:
                self._writer.write(data)
                await self._writer.drain()
            except (ConnectionError, BrokenPipeError) as exc:
                self._write_closed = True
                raise ConnectionClosed(f"{self._name} is gone: {exc}") from None

    # -- receiving -----------------------------------------------------------------------------
    async def serve(self) -> None:
        """Read and dispatch until the peer closes its end; then fail what waits for it."""
        try:
            async for line in read_lines(self._reader):
                self._receive(line)
        finally:
            self._eof.set()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionClosed(f"{self._name} closed the connection"))

    @property
    def closed(self) -> bool:
        """The peer closed its end (EOF)."""
        return self._eof.is_set()

    async def wait_handlers(self, timeout: float) -> None:
        """Wait (bounded) for the requests being handled to finish writing their answers."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    def close(self) -> None:
        self._write_closed = True
        with contextlib.suppress(Exception):
            self._writer.close()

    def _receive(self, line: bytes | OversizeLine) -> None:
        if isinstance(line, OversizeLine):
            self._reply_error(
                None, JsonRpcError(PARSE_ERROR, f"line of {line.size} bytes is too long")
            )
            return
        if not line.strip():
            return
        try:
            message = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            self._reply_error(None, JsonRpcError(PARSE_ERROR, f"parse error: {exc}"))
            return
        if not isinstance(message, dict):
            self._reply_error(
                None, JsonRpcError(INVALID_REQUEST, "a message must be a JSON object (no batches)")
            )
            return
        request_id = message.get("id", _MISSING)
        if "method" not in message and ("result" in message or "error" in message):
            self._receive_response(message, request_id)
            return
        if request_id is not _MISSING and not _valid_id(request_id):
            self._reply_error(
                None, JsonRpcError(INVALID_REQUEST, "id must be a string, a number or null")
            )
            return
        method = message.get("method")
        problem = None
        if not isinstance(method, str):
            problem = "method must be a string"
        elif self._strict and message.get("jsonrpc") != "2.0":
            problem = 'jsonrpc must be "2.0"'
        if problem is not None:
            if request_id is not _MISSING:
                self._reply_error(request_id, JsonRpcError(INVALID_REQUEST, problem))
            elif not isinstance(method, str):
                # No id and no method: not a notification either (`{}`), so it is answered.
                self._reply_error(None, JsonRpcError(INVALID_REQUEST, problem))
            else:
                log.warning("dropped an invalid notification from %s: %s", self._name, problem)
            return
        assert isinstance(method, str)
        params = message.get("params")
        is_notification = request_id is _MISSING
        if is_notification and self._on_notification is not None:
            try:
                self._on_notification(method, params)
            except Exception:
                log.exception("handler of %s failed", method)
            return
        task = asyncio.create_task(self._dispatch(method, params, request_id, is_notification))
        self._track(task)
        if not is_notification:
            self._handling[request_id] = task
            task.add_done_callback(lambda _: self._handled(request_id))

    def _receive_response(self, message: dict[str, Any], request_id: Any) -> None:
        future = self._pending.get(request_id) if isinstance(request_id, int) else None
        if future is None or future.done():
            if request_id in self._called_off:
                log.debug("dropped the late answer to called-off request %r", request_id)
            else:
                log.warning("dropped a response to no request of ours (id %r)", request_id)
            return
        if "error" in message:
            error = message["error"] if isinstance(message["error"], dict) else {}
            future.set_exception(
                JsonRpcError(
                    int(error.get("code", INTERNAL_ERROR))
                    if isinstance(error.get("code"), int)
                    else INTERNAL_ERROR,
                    str(error.get("message", "error")),
                    error.get("data"),
                )
            )
        else:
            future.set_result(message.get("result"))

    async def _dispatch(
        self, method: str, params: Any, request_id: Any, is_notification: bool
    ) -> None:
        try:
            result = await self._handler(method, params, is_notification)
        except asyncio.CancelledError:
            if is_notification or request_id not in self._peer_called_off:
                raise  # not a call-off: the event loop's end
            self._peer_called_off.discard(request_id)
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            error = JsonRpcError(REQUEST_CANCELLED, "the request was called off")
            await self._answer({"jsonrpc": "2.0", "id": request_id, "error": error.to_wire()})
            return
        except JsonRpcError as exc:
            if not is_notification:
                await self._answer({"jsonrpc": "2.0", "id": request_id, "error": exc.to_wire()})
            else:
                log.warning("notification %s failed: %s", method, exc.message)
            return
        except Exception as exc:
            log.exception("handler of %s failed", method)
            if not is_notification:
                error = JsonRpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
                await self._answer({"jsonrpc": "2.0", "id": request_id, "error": error.to_wire()})
            return
        if not is_notification:
            await self._answer({"jsonrpc": "2.0", "id": request_id, "result": result})

    async def _answer(self, message: dict[str, Any]) -> None:
        try:
            await self._send(message)
        except ConnectionClosed:
            log.info("could not answer %r: the connection is closed", message.get("id"))
        except Exception:  # a task that answers must never end with an unretrieved exception
            log.exception("could not answer %r", message.get("id"))

    def _reply_error(self, request_id: Any, error: JsonRpcError) -> None:
        log.warning("bad input from %s: %s", self._name, error.message)
        self._track(
            asyncio.create_task(
                self._answer({"jsonrpc": "2.0", "id": request_id, "error": error.to_wire()})
            )
        )


def _encode(message: dict[str, Any]) -> bytes:
    text = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate: escape it, the line stays valid JSON
        return json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"


def _valid_id(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)  # 1e400 parses to inf, which has no JSON form to echo
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int) and not isinstance(value, bool))
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
