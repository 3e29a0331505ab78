"""protocol.md through the real plugin process and the real codex."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext, Notice, TextDelta, Usage
from plexum_openai_provider._jsonrpc import JsonRpcError
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.plugin.serve import SHUTDOWN_BOUND_S
from plexum_openai_provider.testing import FunctionCall, Hang, Message, ScriptedModelServer
from tests.conftest import codex_under_test_version, host_config, records_of
from tests.helpers import (
    codex_processes,
    processes_matching,
    texts,
    unique_sleep,
    wait_until,
)
from tests.raw_plugin import RawPlugin, turn_params


async def test_example_session_through_the_client(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    async with await PluginClient.spawn(env=codex_env) as plugin:
        init = await plugin.initialize(host_config())
        assert init["protocol_version"] == 1
        assert init["plugin_info"]["name"] == "plexum-openai-provider"
        assert init["models"] == [{"id": "codex"}]
        assert init["capabilities"] == {
            "agent_context": True,
            "host_tools": True,
            "consume": True,
            "cancel": True,
        }
        assert (
            init["codex"]["version"] == codex_under_test_version()
            and Path(init["codex"]["path"]).is_file()
        )

        turn = plugin.start_turn("t-1", AgentContext("cx", workspace), "hello")
        events = [e async for e in turn]
        result = await turn.result()
        # (codex 0.163+ warns about the scripted model's metadata first; 0.136 does not)
        assert [type(e) for e in events if not isinstance(e, Notice)] == [TextDelta, Usage]
        assert "echo: hello" in texts(events)
        assert result.status == "completed" and result.usage == Usage(100, 0, 10, 0)
        assert (records_of(codex_env, workspace) / "thread").read_text().strip() == result.thread_id

        second = plugin.start_turn("t-2", AgentContext("cx", workspace), "and again")
        assert "echo: and again" in texts([e async for e in second])
        assert (await second.result()).thread_id == result.thread_id
    assert plugin.process.returncode == 0


async def test_requests_before_initialize_and_busy_agents(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    plugin = await RawPlugin.spawn(codex_env)
    early = await plugin.request(1, "turn/start", turn_params("t-0", "cx", workspace, "hi"))
    assert early["error"]["code"] == -32002
    await plugin.initialize()

    model_server.enqueue(Hang())
    await plugin.submit("slow", "turn/start", turn_params("t-1", "cx", workspace, "one"))
    await wait_until(lambda: len(model_server.requests) == 1)
    busy = await plugin.request("busy", "turn/start", turn_params("t-2", "cx", workspace, "two"))
    assert busy["error"]["code"] == -32001 and "cx" in busy["error"]["message"]
    # The running turn is not disturbed: cancel it and it ends cancelled.
    assert (await plugin.request("c", "turn/cancel", {"turn_id": "t-1"}))["result"] == {}
    slow = await plugin.answer("slow")
    assert slow["result"]["status"] == "cancelled"
    assert slow["result"]["error"]["code"] == "cancelled"
    # A cancel after the end is a no-op; an unknown turn is -32602.
    assert (await plugin.request("c2", "turn/cancel", {"turn_id": "t-1"}))["result"] == {}
    unknown = await plugin.request("c3", "turn/cancel", {"turn_id": "nope"})
    assert unknown["error"]["code"] == -32602 and "nope" in unknown["error"]["message"]
    assert await plugin.close() == 0


# Each a turn/start the plugin refuses, naming the field, before anything runs.
INVALID_TURN_PARAMS = [
    (lambda p: p.pop("turn_id"), "turn_id"),
    (lambda p: p.update(turn_id=5), "turn_id"),
    (lambda p: p["agent"].update(workspace="relative/path"), "agent.workspace"),
    (lambda p: p["agent"].update(workspace="/no/such/dir"), "agent.workspace"),
    (lambda p: p["agent"].pop("id"), "agent.id"),
    (lambda p: p.update(messages=[]), "messages"),
    (lambda p: p.update(messages=[{"role": "assistant", "content": "x"}]), "messages"),
    (lambda p: p.update(messages="hello"), "messages"),
    (lambda p: p.update(model="gpt-unknown"), "model"),
    (lambda p: p.update(effort="hyper"), "effort"),
    (lambda p: p.update(effort=5), "effort"),
    (lambda p: p.update(model="gpt-5.5", effort="ultra"), "effort"),
    (lambda p: p["messages"][0].update(content="x" * (1024 * 1024 + 1)), "messages"),
]


async def test_invalid_turn_params_name_the_field(
    codex_env: dict[str, str], workspace: Path, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    # One plugin answers them all, one after the other (each refusal leaves it as it was, which
    # the next one relies on: no model request, no thread recorded).
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    for n, (mutate, field) in enumerate(INVALID_TURN_PARAMS):
        params = turn_params(f"t-{n}", "cx", workspace, "hi")
        mutate(params)
        answer = await plugin.request(n, "turn/start", params)
        assert answer.get("error", {}).get("code") == -32602, (field, answer)
        assert answer["error"]["data"]["field"] == field, (field, answer)
        assert field.split(".")[-1] in answer["error"]["message"], (field, answer)
        assert model_server.requests == [], field
        assert not (records_of(codex_env, workspace) / "thread").exists(), field
    # A hostile agent id is just a name here: the turn runs (in a workspace of its own: a
    # refused request may have claimed that one for agent cx).
    other = tmp_path / "other"
    other.mkdir()
    params = turn_params("t-ok", "../../etc", other, "hi")
    answer = await plugin.request("ok", "turn/start", params)
    assert answer.get("result", {}).get("status") == "completed", answer
    assert await plugin.close() == 0


# The plugin refuses the second before codex runs: one engine proves it.
@pytest.mark.one_engine
async def test_duplicate_turn_id_is_refused(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    first = await plugin.request(1, "turn/start", turn_params("t-1", "cx", workspace, "a"))
    assert first["result"]["status"] == "completed"
    again = await plugin.request(2, "turn/start", turn_params("t-1", "cx", workspace, "b"))
    assert again["error"]["code"] == -32602 and again["error"]["data"]["field"] == "turn_id"
    assert await plugin.close() == 0


BAD_CONFIGS = [
    ({"bogus": 1}, "bogus"),
    ({"idle_timeout_s": "soon"}, "idle_timeout_s"),
    ({"binary": "/no/such/codex"}, "binary"),
    ({"binary": "/bin/false"}, "binary"),
    ({"binary": "definitely-not-on-path-codex"}, "binary"),
]


# The configs name no engine: each fails before one is chosen.
@pytest.mark.one_engine
async def test_bad_config_fails_initialize(codex_env: dict[str, str]) -> None:
    plugin = await RawPlugin.spawn(codex_env)
    for n, (config, key) in enumerate(BAD_CONFIGS):
        answer = await plugin.request(n, "initialize", {"protocol_version": 1, "config": config})
        assert answer.get("error", {}).get("code") == -32602, (key, answer)
        assert key in answer["error"]["message"], (key, answer)
        assert answer["error"]["data"]["field"] == f"config.{key}", (key, answer)
        # Still serving, still uninitialised (the next bad one is refused the same way).
        cancel = await plugin.request(f"c-{n}", "turn/cancel", {"turn_id": "x"})
        assert cancel["error"]["code"] == -32002, (key, cancel)
    await plugin.initialize()  # and a good initialize works
    assert await plugin.close() == 0


@pytest.mark.one_engine
async def test_bad_input_corpus_is_answered_and_serving_goes_on(codex_env: dict[str, str]) -> None:
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    huge_int = int("9" * 1000)
    long_str = "i" * (1024 * 1024)
    corpus: list[tuple[bytes, Any, int | None]] = [
        # (line, id of the answer, error code; None: no answer at all)
        (b'{"jsonrpc":"2.0","id":1,"method":"turn/sta', None, -32700),
        (b"\xff\xfe\x00garbage", None, -32700),
        (b'{"jsonrpc":"2.0","id":"x","method":"initialize"', None, -32700),
        (b"[]", None, -32600),
        (b'[{"jsonrpc":"2.0","id":1,"method":"shutdown"}]', None, -32600),
        (b"42", None, -32600),
        (b"{}", None, -32600),
        (b'{"jsonrpc":"2.0","id":"\\ud800","method":"turn/cancel"}', "\ud800", -32602),
        (b'{"jsonrpc":"2.0","id":"lm","method":"\\udc00"}', "lm", -32601),
        (b'{"jsonrpc":"2.0","method":"turn/start","params":{}}', None, None),
        (b'{"jsonrpc":"2.0","id":{"a":1},"method":"turn/cancel"}', None, -32600),
        (b'{"jsonrpc":"2.0","id":1e400,"method":"turn/cancel"}', None, -32600),
        (b'{"jsonrpc":"2.0","id":NaN,"method":"turn/cancel"}', None, -32700),
        (b'{"jsonrpc":"1.0","id":"v1","method":"turn/cancel"}', "v1", -32600),
        (b'{"jsonrpc":"2.0","id":"nm","method":7}', "nm", -32600),
        (b'{"jsonrpc":"2.0","id":"unk","method":"no/such/method"}', "unk", -32601),
        (b'{"jsonrpc":"2.0","id":"arr","method":"turn/cancel","params":[1,2]}', "arr", -32602),
        (
            b'{"jsonrpc":"2.0","id":"typ","method":"turn/cancel","params":{"turn_id":1}}',
            "typ",
            -32602,
        ),
        (
            b'{"jsonrpc":"2.0","id":"typ2","method":"turn/start","params":{"turn_id":"t","agent":"cx","messages":[]}}',
            "typ2",
            -32602,
        ),
        (
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": huge_int,
                    "method": "turn/cancel",
                    "params": {"turn_id": "q"},
                }
            ).encode(),
            huge_int,
            -32602,
        ),
        (
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": long_str,
                    "method": "turn/cancel",
                    "params": {"turn_id": "q"},
                }
            ).encode(),
            long_str,
            -32602,
        ),
        (b'{"jsonrpc":"2.0","method":"no/such/notification"}', None, None),
        (b'{"jsonrpc":"2.0","method":"turn/cancel","params":{"turn_id":"zz"}}', None, None),
        (b'{"jsonrpc":"2.0","id":999,"result":{}}', None, None),
        (b'{"jsonrpc":"2.0","id":998,"error":{"code":1,"message":"x"}}', None, None),
        (b"", None, None),
        (b"   ", None, None),
        (
            b'{"jsonrpc":"2.0","id":' + b"[" * 100000 + b"]" * 100000 + b',"method":"x"}',
            None,
            -32700,
        ),
    ]
    for line, answer_id, code in corpus:
        await plugin.send(line)
        marker = f"after-{len(plugin.received)}"
        await plugin.send(
            {"jsonrpc": "2.0", "id": marker, "method": "turn/cancel", "params": {"turn_id": "none"}}
        )
        answers = []
        while True:
            message = await plugin.recv()
            if message.get("id") == marker:
                break
            answers.append(message)
        # The good request after every bad line is answered as usual: serving goes on.
        assert message["error"]["code"] == -32602 and "none" in message["error"]["message"]
        if code is None:
            assert answers == [], (line[:80], answers)
        else:
            assert len(answers) == 1, (line[:80], answers)
            assert answers[0]["jsonrpc"] == "2.0"
            assert answers[0]["id"] == answer_id
            assert answers[0]["error"]["code"] == code, (line[:80], answers)
    assert plugin.process.returncode is None
    assert await plugin.close() == 0


async def test_eight_agents_at_once_keep_their_events_apart(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        turns = []
        for i in range(8):
            ws = tmp_path / f"agent-{i}"
            ws.mkdir()
            turns.append(
                plugin.start_turn(f"t-{i}", AgentContext(f"agent-{i}", ws), f"message {i}")
            )

        async def collect(turn: Any) -> tuple[list[Any], Any]:
            return [e async for e in turn], await turn.result()

        outcomes = await asyncio.gather(*(collect(t) for t in turns))
        for i, (events, result) in enumerate(outcomes):
            assert result.status == "completed", result.error
            assert texts(events) == [f"echo: message {i}"]
            assert [type(e) for e in events][-1] is Usage
            records = records_of(codex_env, tmp_path / f"agent-{i}")
            assert (records / "thread").read_text().strip() == result.thread_id
        assert len({r.thread_id for _, r in outcomes}) == 8
        assert sorted(r.last_user_text() for r in model_server.requests) == sorted(
            f"message {i}" for i in range(8)
        )


# The lines between host and plugin: how codex's own large line reaches the plugin (the same framer
# on both engines) is tests/e2e/test_runner.py's ten MiB message, on each engine.
@pytest.mark.one_engine
async def test_sixteen_mib_lines_both_ways(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    # Host → plugin: a 16 MiB request line is read whole (and this one is refused by its size,
    # which codex would refuse too, with a message that says so).
    big_prompt = "p" * (16 * 1024 * 1024)
    answer = await plugin.request(1, "turn/start", turn_params("t-1", "cx", workspace, big_prompt))
    assert answer["error"]["code"] == -32602 and "16777216 characters" in answer["error"]["message"]
    # Plugin → host: a 16 MiB agent message arrives as one text_delta line.
    big_answer = "".join(f"{i:015d}\n" for i in range(1024 * 1024))
    model_server.enqueue(Message(big_answer))
    answer = await plugin.request(2, "turn/start", turn_params("t-2", "cx", workspace, "big one"))
    assert answer["result"]["status"] == "completed"
    deltas = [n for n in plugin.notes if n["params"]["event"]["type"] == "text_delta"]
    assert len(deltas) == 1 and deltas[0]["params"]["event"]["text"] == big_answer
    assert max(len(line) for line in plugin.received) > 16 * 1024 * 1024
    assert await plugin.close() == 0


STRAY_OUTPUT_PLUGIN = """
import asyncio, os, subprocess, sys, warnings
from plexum_openai_provider.plugin.serve import serve
from plexum_openai_provider.plugin.stdio import protect_stdout
fd = protect_stdout()
print("a stray print")
sys.stdout.write("stray write\\n")
warnings.warn("a library warning")
os.write(1, b"raw write to fd 1\\n")
subprocess.run(["echo", "a child's output"])
asyncio.run(serve(0, fd))
"""


@pytest.mark.one_engine
async def test_stray_output_cannot_corrupt_stdout(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    plugin = await RawPlugin.spawn(codex_env, [sys.executable, "-c", STRAY_OUTPUT_PLUGIN])
    await plugin.initialize()
    answer = await plugin.request(1, "turn/start", turn_params("t-1", "cx", workspace, "hi"))
    assert answer["result"]["status"] == "completed"
    assert await plugin.close() == 0
    for line in plugin.received:
        assert json.loads(line)["jsonrpc"] == "2.0"
    stderr = await plugin.stderr_text()
    for text in [
        "a stray print",
        "stray write",
        "a library warning",
        "raw write to fd 1",
        "a child's output",
    ]:
        assert text in stderr


@pytest.mark.parametrize("how", ["stdin-closed", "shutdown", "sigterm"])
async def test_ending_the_plugin_cancels_running_turns(
    codex_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
    how: str,
) -> None:
    marker = unique_sleep(417)
    model_server.enqueue(FunctionCall("exec_command", json.dumps({"cmd": marker})))
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    await plugin.submit("turn", "turn/start", turn_params("t-1", "cx", workspace, "run it"))
    await wait_until(lambda: bool(processes_matching(marker)))
    started = time.monotonic()
    if how == "shutdown":
        await plugin.submit("bye", "shutdown", {})
    elif how == "sigterm":
        plugin.process.terminate()
    else:
        assert plugin.process.stdin is not None
        plugin.process.stdin.close()
    answers = {}
    while len(answers) < (2 if how == "shutdown" else 1):
        message = await plugin.recv(timeout=30)
        if "id" in message:
            answers[message["id"]] = message
    assert answers["turn"]["result"]["status"] == "cancelled"
    if how == "shutdown":
        assert answers["bye"]["result"] == {}
    assert await plugin.close() == 0
    print(f"{how}: the plugin exited {time.monotonic() - started:.2f} s after it")
    assert time.monotonic() - started < SHUTDOWN_BOUND_S
    assert processes_matching(marker) == []
    assert codex_processes(codex_home) == []  # codex, its tools, the app-server: all gone


@pytest.mark.engines("app-server")
async def test_an_app_server_that_stopped_answering_does_not_hold_up_the_shutdown(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer, codex_home: Path
) -> None:
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize({"max_concurrent_turns": 4})  # all four at the model at once
    for i in range(4):
        model_server.enqueue(Hang())
        (tmp_path / f"ws-{i}").mkdir()
        params = turn_params(f"t-{i}", f"a{i}", tmp_path / f"ws-{i}", "hi")
        await plugin.submit(f"t{i}", "turn/start", params)
    await wait_until(lambda: len(model_server.requests) == 4)
    # npm's codex is a node wrapper with the native app-server as its child: both are stopped.
    servers = [p for p in codex_processes(codex_home) if p in processes_matching(" app-server")]
    assert servers
    for server in servers:
        os.kill(server, signal.SIGSTOP)  # wedged: it reads nothing and answers nothing
    started = time.monotonic()
    plugin.process.terminate()
    answers = [await plugin.answer_any(timeout=30) for _ in range(4)]
    assert await plugin.close() == 0
    took = time.monotonic() - started
    print(f"wedged app-server, 4 turns: the plugin exited {took:.2f} s after SIGTERM")
    assert took < SHUTDOWN_BOUND_S
    assert codex_processes(codex_home) == []
    assert [a["result"]["status"] for a in answers] == ["cancelled"] * 4


@pytest.mark.one_engine
def test_a_shutdown_past_its_bound_exits_and_the_watchdog_ends_codex(tmp_path: Path) -> None:
    # A shutdown that never ends (patched in: nothing the tests above can reach hangs it) while
    # a process the plugin started runs: the plugin exits 1 at the bound, and its watchdog ends
    # that process.
    marker = unique_sleep(313)
    script = """
import asyncio, os, subprocess, sys
from plexum_openai_provider._codex.guard import guard
from plexum_openai_provider.plugin import serve, server
serve.SHUTDOWN_BOUND_S = 1.0
async def never(self):
    child = subprocess.Popen(MARKER.split(), env={**os.environ, **guard().marker("t")})
    guard().started(child.pid)
    await asyncio.Event().wait()
server.PluginServer.shutdown = never
sys.exit(serve.serve_stdio())
""".replace("MARKER", repr(marker))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], input=b"", capture_output=True, timeout=60
    )
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr.decode()
    assert b"shutdown took over 1 s: exiting now" in done.stderr
    deadline = time.monotonic() + 10
    while processes_matching(marker):
        assert time.monotonic() < deadline, "the watchdog did not end the plugin's child"
        time.sleep(0.05)
    print(f"a shutdown past a 1 s bound: exit 1 after {took:.2f} s")


@pytest.mark.one_engine
async def test_host_tool_errors_surface_as_json_rpc_errors_in_the_client(
    codex_env: dict[str, str], workspace: Path
) -> None:
    async with await PluginClient.spawn(env=codex_env) as plugin:
        with pytest.raises(JsonRpcError) as err:
            await plugin.start_turn("t-1", AgentContext("cx", workspace), "hi").result()
        assert err.value.code == -32002
