"""Calling a request off between two connections (LSP's ``$/cancelRequest``), in memory."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from plexum_openai_provider._jsonrpc import CALL_OFF, REQUEST_CANCELLED, Connection, JsonRpcError


class Pipe:
    """A writer that feeds a reader: one direction of an in-memory link."""

    def __init__(self) -> None:
        self.reader = asyncio.StreamReader()
        self.sent: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.sent.append(json.loads(data))
        self.reader.feed_data(data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.reader.feed_eof()


class Peers:
    """A caller (the plugin: it calls off what it stops waiting for) and a callee (the host)."""

    def __init__(self, slow: asyncio.Event) -> None:
        self.to_callee, self.to_caller = Pipe(), Pipe()
        self.stopped = asyncio.Event()
        self.slow = slow

        async def callee_handler(method: str, params: Any, is_notification: bool) -> Any:
            if method == CALL_OFF:
                self.callee.cancel_handling(params["id"])
                return None
            try:
                await self.slow.wait()
            except asyncio.CancelledError:
                self.stopped.set()
                raise
            return "late"

        async def caller_handler(method: str, params: Any, is_notification: bool) -> Any:
            raise JsonRpcError(-32601, "nothing here")

        self.caller = Connection(
            self.to_caller.reader, self.to_callee, caller_handler, name="host", call_off=True
        )
        self.callee = Connection(self.to_callee.reader, self.to_caller, callee_handler)
        self.tasks = [asyncio.create_task(c.serve()) for c in (self.caller, self.callee)]

    async def close(self) -> None:
        self.to_callee.close()
        self.to_caller.close()
        await asyncio.gather(*self.tasks)


async def test_a_request_that_times_out_is_called_off_and_its_handler_cancelled() -> None:
    peers = Peers(asyncio.Event())
    with pytest.raises(TimeoutError):
        await peers.caller.request("host/call_tool", {"name": "slow"}, timeout=0.05)
    await asyncio.wait_for(peers.stopped.wait(), 5)
    await peers.callee.wait_handlers(5)
    await peers.caller.wait_handlers(5)
    [request, call_off] = peers.to_callee.sent
    assert call_off == {"jsonrpc": "2.0", "method": CALL_OFF, "params": {"id": request["id"]}}
    # The callee answers the called-off request with LSP's RequestCancelled.
    [answer] = peers.to_caller.sent
    assert answer["id"] == request["id"]
    assert answer["error"]["code"] == REQUEST_CANCELLED
    await peers.close()


async def test_a_cancelled_caller_calls_off_and_a_late_answer_is_dropped_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    peers = Peers(asyncio.Event())

    async def ask() -> Any:
        return await peers.caller.request("host/call_tool", {"name": "slow"})

    task = asyncio.create_task(ask())
    while not peers.to_callee.sent:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(peers.stopped.wait(), 5)
    await peers.callee.wait_handlers(5)
    await peers.caller.wait_handlers(5)
    await asyncio.sleep(0.05)  # the answer is read
    assert [m.get("method") for m in peers.to_callee.sent] == ["host/call_tool", CALL_OFF]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("late answer to called-off request" in r.getMessage() for r in caplog.records)
    await peers.close()


async def test_an_answered_request_is_not_called_off() -> None:
    done = asyncio.Event()
    done.set()
    peers = Peers(done)
    assert await peers.caller.request("host/call_tool", {}) == "late"
    assert [m.get("method") for m in peers.to_callee.sent] == ["host/call_tool"]
    # A call-off of a request already answered, or never made, changes nothing.
    assert not peers.callee.cancel_handling(1) and not peers.callee.cancel_handling("nope")
    await peers.close()


async def test_a_request_carries_members_beside_its_params() -> None:
    """codex app-server takes a W3C trace context as the request's own `trace` member."""
    peers = Peers(asyncio.Event())
    peers.slow.set()
    trace = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    assert await peers.caller.request("turn/start", {"x": 1}, extra={"trace": trace}) == "late"
    [request] = peers.to_callee.sent
    assert request["trace"] == trace and request["method"] == "turn/start"
    assert request["params"] == {"x": 1}
    await peers.close()


async def test_notifications_go_to_their_handler_as_read_in_order_and_requests_still_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A connection given ``on_notification`` hands each notification to it as it is read (no
    task each): in order, a failing one logged and the next still handled; requests still go to
    the handler and are answered."""
    pipe, answers = Pipe(), Pipe()
    seen: list[tuple[str, Any]] = []

    def on_notification(method: str, params: Any) -> None:
        if method == "boom":
            raise ValueError("no")
        seen.append((method, params))

    async def handler(method: str, params: Any, is_notification: bool) -> Any:
        assert not is_notification, "a notification reached the request handler"
        return {"echo": params}

    connection = Connection(pipe.reader, answers, handler, on_notification=on_notification)
    for i, method in enumerate(["a", "boom", "b", "c"]):
        pipe.write(json.dumps({"jsonrpc": "2.0", "method": method, "params": i}).encode() + b"\n")
    pipe.write(b'{"jsonrpc": "2.0", "id": 7, "method": "ask", "params": "x"}\n')
    pipe.close()
    with caplog.at_level(logging.ERROR):
        await connection.serve()
        await connection.wait_handlers(1.0)
    assert seen == [("a", 0), ("b", 2), ("c", 3)]
    assert "handler of boom failed" in caplog.text
    assert answers.sent == [{"jsonrpc": "2.0", "id": 7, "result": {"echo": "x"}}]
