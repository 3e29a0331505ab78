"""The protocol under hostile input: hypothesis throws malformed and strange messages at the plugin
server (the real connection, router, params and provider; a fake codex), seeded and bounded.

What must hold for every input: every request is answered exactly once, with its own id (a line
that is no request gets one answer, with id null); a notification or a blank line gets none; every answer is one
line of valid UTF-8 JSON; the server keeps serving; nothing that was refused runs; no task ends
with an unretrieved exception."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plexum_openai_provider import CodexProvider, HostConfig
from plexum_openai_provider._engine.seam import RunSpec
from plexum_openai_provider._jsonrpc import Connection
from plexum_openai_provider.plugin.server import PluginServer
from plexum_openai_provider.testing import FakeEngine, FakeRun, exec_lines

THREAD = "01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1"
MARK = "zz-marker"


class AlwaysEngine(FakeEngine):
    """Every run is a completed turn."""

    async def start_run(self, spec: RunSpec) -> Any:
        self.runs.append(FakeRun(exec_lines.turn(THREAD, "ok")))
        return await super().start_run(spec)


class Capture:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.new = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.lines.append(data)
        self.new.set()

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["\ud800", "a\udfffb", "t-1", "", "cx", "../../etc", "\x00", "é" * 3]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=8,
)
methods = st.one_of(
    st.sampled_from(
        ["turn/start", "turn/cancel", "session/consume", "initialize", "shutdown", "x/y", "\ud800"]
    ),
    json_scalars,
)


@st.composite
def turn_params(draw: st.DrawFn, workspace: str) -> dict[str, Any]:
    """turn/start params that are often nearly right, so the checks past parsing are reached."""
    params: dict[str, Any] = {
        "turn_id": draw(texts),
        "agent": {"id": draw(texts), "workspace": draw(st.sampled_from([workspace, "rel", "/no"]))},
        "messages": [{"role": "user", "content": draw(texts)}],
    }
    for key in draw(st.lists(st.sampled_from(["turn_id", "agent", "messages"]), max_size=1)):
        params[key] = draw(json_values)
    if draw(st.booleans()):
        params["tools"] = [{"name": draw(texts), "description": draw(texts)}]
    return params


@st.composite
def messages(draw: st.DrawFn, workspace: str) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=40)).replace(b"\n", b" ")
    if kind == 1:
        return json.dumps(draw(json_values)).encode()
    message: dict[str, Any] = {}
    if draw(st.integers(0, 9)) > 0:
        message["jsonrpc"] = draw(st.sampled_from(["2.0", "2.0", "2.0", "1.0", 2]))
    if draw(st.integers(0, 9)) > 1:
        message["id"] = draw(json_values)
    if draw(st.integers(0, 9)) > 0:
        message["method"] = draw(methods)
    if message.get("method") == "turn/start" and draw(st.booleans()):
        message["params"] = draw(turn_params(workspace))
    elif draw(st.booleans()):
        message["params"] = draw(json_values)
    # json.dumps escapes lone surrogates, which is valid JSON: exactly what a host can send.
    return json.dumps(message).encode()


def valid_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return value is None or isinstance(value, (str, int, float))


async def exchange(tmp: Path, lines: list[bytes]) -> None:
    engine = AlwaysEngine([])
    server = PluginServer()
    server.provider = CodexProvider(
        HostConfig(),
        engine,
        env={"CODEX_HOME": str(tmp / "home"), "PLEXUM_STATE_DIR": str(tmp / "state")},
        lock_dir=tmp / "locks",
    )
    reader = asyncio.StreamReader()
    out = Capture()
    connection = Connection(reader, out, server.router, name="host")
    server.attach(connection)
    unretrieved: list[Any] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: unretrieved.append(ctx))
    serving = asyncio.create_task(connection.serve())
    for line in lines:
        reader.feed_data(line + b"\n")
    marker = {"jsonrpc": "2.0", "id": MARK, "method": "turn/cancel", "params": {"turn_id": "n"}}
    reader.feed_data(json.dumps(marker).encode() + b"\n")
    answers: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while not any(a.get("id") == MARK for a in answers):
            await out.new.wait()
            out.new.clear()
            answers = [json.loads(raw.decode("utf-8")) for raw in out.lines]
    await connection.wait_handlers(10)  # turns started by the input finish
    await server.provider.close()
    reader.feed_eof()
    await serving
    answers = [json.loads(raw.decode("utf-8")) for raw in out.lines]
    assert all(raw.endswith(b"\n") and raw.count(b"\n") == 1 for raw in out.lines)

    expected: list[Any] = []  # the id each line must be answered with (None: id null)
    for raw in lines:
        if not raw.strip():
            continue  # a blank line is no message
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            expected.append(None)
            continue
        if not isinstance(message, dict):
            expected.append(None)
        elif "method" not in message and ("result" in message or "error" in message):
            continue  # a response: dropped
        elif "id" in message and not valid_id(message["id"]):
            expected.append(None)
        elif "id" in message:
            expected.append(message["id"])
        elif not isinstance(message.get("method"), str):
            expected.append(None)  # neither request nor notification (`{}`)
        # else: a notification, never answered
    got = [a["id"] for a in answers if a.get("id") != MARK and a.get("method") is None]
    assert sorted(map(repr, got)) == sorted(map(repr, expected)), (lines, answers)
    for answer in answers:
        if "method" not in answer:  # not one of the plugin's own notifications (turn/event)
            assert ("result" in answer) != ("error" in answer), answer
    # Turns ran only for turn/start requests that were answered with a result.
    ran = {spec.prompt for spec in engine.specs}
    started = [a for a in answers if isinstance(a.get("result"), dict) and "status" in a["result"]]
    assert len(engine.specs) == len(started), (engine.specs, started)
    assert all(isinstance(p, str) for p in ran)
    assert unretrieved == [], unretrieved


@settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,  # seeded: the same inputs on every run, in CI too
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_protocol_input(tmp_path: Path, data: st.DataObject) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    lines = data.draw(st.lists(messages(str(workspace)), min_size=1, max_size=4))
    logging.disable(logging.CRITICAL)  # the server logs every bad line; not what is tested
    try:
        asyncio.run(exchange(tmp_path, lines))
    finally:
        logging.disable(logging.NOTSET)


def test_known_hostile_lines() -> None:
    """The shapes that broke round 1, named (each also falls inside the strategy above)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        lines = [
            b"{}",
            json.dumps({"jsonrpc": "2.0", "id": "\ud800", "method": "turn/cancel"}).encode(),
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "\ud800"}).encode(),
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 2,
                    "method": "turn/start",
                    "params": {
                        "turn_id": "t\ud800",
                        "agent": {"id": "cx", "workspace": str(ws)},
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                }
            ).encode(),
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 3,
                    "method": "session/consume",
                    "params": {
                        "agent": {"id": "cx", "workspace": str(ws)},
                        "block_ids": ["a\udc00"],
                        "marker": "\ud800",
                    },
                }
            ).encode(),
        ]
        asyncio.run(exchange(Path(tmp), lines))
