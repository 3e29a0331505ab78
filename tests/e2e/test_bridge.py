"""Host tools through mcp-host: the real plugin, the real codex, the scripted model."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext, ToolOutput, ToolSpec
from plexum_openai_provider._bridge.names import key_path, mcp_namespace, server_name, socket_path
from plexum_openai_provider._bridge.relay import relay_command
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import (
    FunctionCall,
    Message,
    Reply,
    ResponsesRequest,
    ScriptedModelServer,
)
from tests.conftest import host_config
from tests.helpers import plugin_script, texts
from tests.raw_plugin import RawPlugin, turn_params

WEATHER = ToolSpec(
    "get_weather",
    "The weather of a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def call(
    tool: str, args: dict[str, Any], agent: str = "cx", call_id: str | None = None
) -> FunctionCall:
    return FunctionCall(
        tool, json.dumps(args), call_id=call_id, namespace=mcp_namespace(server_name(agent))
    )


def outputs(request: ResponsesRequest) -> dict[str, str]:
    """call_id → the output text the model was sent."""
    out = {}
    for item in request.items_of_type("function_call_output"):
        value = item["output"]
        if isinstance(value, list):
            value = "\n".join(part.get("text", "") for part in value)
        out[item["call_id"]] = value
    return out


@pytest.fixture
def socket_dir(tmp_path: Path) -> Path:
    return Path(f"/tmp/plexum-test-{os.getpid()}-{tmp_path.name[-8:]}")


@pytest.fixture
def plugin_env(codex_env: dict[str, str], socket_dir: Path) -> dict[str, str]:
    return {**codex_env, "PLEXUM_SOCKET_DIR": str(socket_dir)}


# What differs between models is how codex offers the tool: the scripted model's plain offer is
# the one every other host-tool test here runs on.
@pytest.mark.catalog("gpt-5.5", "code-mode")
async def test_the_model_calls_a_host_tool_and_gets_its_output(
    plugin_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
    socket_dir: Path,
) -> None:
    seen: list[dict[str, Any]] = []
    sock = socket_path("cx", codex_home, socket_dir)

    def weather(args: dict[str, Any]) -> str:
        seen.append(args)
        # While the turn runs: the socket is the plugin user's alone.
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(socket_dir).st_mode) == 0o700
        assert os.stat(socket_dir).st_uid == os.getuid()
        return f"Sunny in {args['city']}, 21 °C"

    model_server.enqueue(
        call("get_weather", {"city": "Paris"}, call_id="call_w1"), Message("It is sunny.")
    )
    async with await PluginClient.spawn(env=plugin_env, tools={"get_weather": weather}) as plugin:
        await plugin.initialize(host_config())
        turn = plugin.start_turn("t-1", AgentContext("cx", workspace), "Weather?", tools=[WEATHER])
        events = [e async for e in turn]
        result = await turn.result()
    assert result.status == "completed", result
    assert seen == [{"city": "Paris"}]
    assert "It is sunny." in texts(events)
    first, second = model_server.requests
    # Offered up front, whatever the model (a catalog model would otherwise find it only through
    # codex's tool_search, or not at all in code mode), and called by name in the first answer.
    assert first.offers("get_weather", mcp_namespace(server_name("cx"))), first.tool_names()
    assert "The weather of a city" in first.raw
    assert "tool_search" not in first.tool_names()
    # codex's sub-agents are not offered (a code-mode catalog model offers them by default).
    assert not [n for n in first.tool_names() if "agent" in n], first.tool_names()
    assert "spawn_agent" not in first.exec_description()
    assert "Sunny in Paris, 21 °C" in second.tool_outputs()["call_w1"]
    assert len(sock.parent.name) and len(os.fsencode(sock)) < 100
    assert not sock.exists()  # the plugin is gone, and its socket with it


async def test_errors_timeouts_and_parallel_calls(
    plugin_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    stopped: list[str] = []

    async def slow(args: dict[str, Any]) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.append("slow")  # called off by the plugin when its timeout fired
            raise
        return "too late"

    def failing(args: dict[str, Any]) -> str:
        raise RuntimeError("database is down")

    tools = {
        "echo": lambda args: f"echo {args.get('x')}",
        "flagged": lambda args: ToolOutput("not allowed", is_error=True),
        "failing": failing,
        "slow": slow,
    }
    specs = [ToolSpec(name, input_schema={"type": "object"}) for name in tools]
    model_server.enqueue(
        [
            call("echo", {"x": 1}, call_id="c_echo1"),
            call("echo", {"x": 2}, call_id="c_echo2"),
            call("flagged", {}, call_id="c_flag"),
            call("failing", {}, call_id="c_fail"),
            call("slow", {}, call_id="c_slow"),
        ],
        Message("done"),
    )
    async with await PluginClient.spawn(env=plugin_env, tools=tools) as plugin:
        await plugin.initialize(host_config(tool_timeout_s=1.5))
        turn = plugin.start_turn("t-1", AgentContext("cx", workspace), "go", tools=specs)
        events = [e async for e in turn]
        result = await turn.result()
    assert result.status == "completed", result
    assert "done" in texts(events)
    got = outputs(model_server.requests[1])
    assert "echo 1" in got["c_echo1"] and "echo 2" in got["c_echo2"]
    assert "not allowed" in got["c_flag"]
    assert "database is down" in got["c_fail"]
    assert "did not answer tool 'slow' within 1.5 s" in got["c_slow"]
    assert stopped == ["slow"] and len(plugin.called_off) == 1


@pytest.mark.parametrize("end", ["cancel", "shutdown"])
async def test_a_host_tool_still_running_when_the_turn_ends_is_called_off(
    plugin_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, end: str
) -> None:
    running, stopped = asyncio.Event(), asyncio.Event()

    async def deploy(args: dict[str, Any]) -> str:
        running.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return "deployed"

    model_server.enqueue(call("deploy", {}, call_id="c_deploy"), Message("never"))
    async with await PluginClient.spawn(env=plugin_env, tools={"deploy": deploy}) as plugin:
        await plugin.initialize(host_config())
        spec = ToolSpec("deploy", input_schema={"type": "object"})
        turn = plugin.start_turn("t-1", AgentContext("cx", workspace), "go", tools=[spec])
        await asyncio.wait_for(running.wait(), 30)
        if end == "cancel":
            await plugin.cancel("t-1")
        else:
            await plugin.shutdown()
        assert (await turn.result()).status == "cancelled"
        await asyncio.wait_for(stopped.wait(), 10)
        assert len(plugin.called_off) == 1


@pytest.mark.one_engine
async def test_a_called_off_tool_call_names_its_request_and_a_late_answer_is_dropped(
    plugin_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    model_server.enqueue(call("slow", {}, call_id="c_slow"), Message("after the timeout"))
    plugin = await RawPlugin.spawn(plugin_env)
    await plugin.initialize({"tool_timeout_s": 1})
    params = turn_params("t-1", "cx", workspace, "go", tools=[{"name": "slow"}])
    await plugin.submit("t", "turn/start", params)
    ask = await plugin.recv_until(lambda m: m.get("method") == "host/call_tool")
    called_off = await plugin.recv_until(lambda m: m.get("method") == "$/cancelRequest")
    assert called_off == {
        "jsonrpc": "2.0",
        "method": "$/cancelRequest",
        "params": {"id": ask["id"]},
    }
    # The host answers anyway, late: dropped quietly; the model got the timeout.
    await plugin.send({"jsonrpc": "2.0", "id": ask["id"], "result": {"content": []}})
    answer = await plugin.answer("t", timeout=60)
    assert answer["result"]["status"] == "completed"
    assert "did not answer tool 'slow' within 1 s" in outputs(model_server.requests[1])["c_slow"]
    assert await plugin.close() == 0
    assert "dropped a response" not in await plugin.stderr_text()


# Refused before codex runs: one engine proves it.
@pytest.mark.one_engine
async def test_tool_names_and_schemas_are_validated_at_turn_start(
    plugin_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    async with await PluginClient.spawn(env=plugin_env) as plugin:
        await plugin.initialize(host_config())
        for tools, field in [
            ([{"name": "bad name!", "input_schema": {"type": "object"}}], "tools[0].name"),
            ([{"name": "x" * 65}], "tools[0].name"),
            ([{"name": "a"}, {"name": "a"}], "tools[1].name"),
            ([{"name": "a", "input_schema": {"type": "string"}}], "tools[0].input_schema"),
            ([{"name": "a", "input_schema": []}], "tools[0].input_schema"),
        ]:
            turn = plugin.start_turn_raw(
                {
                    "turn_id": f"t-{field}-{len(tools)}",
                    "agent": {"id": "cx", "workspace": str(workspace)},
                    "messages": [{"role": "user", "content": "hi"}],
                    "tools": tools,
                }
            )
            with pytest.raises(Exception) as err:
                await turn.result()
            assert getattr(err.value, "code", None) == -32602
            assert err.value.data["field"] == field  # type: ignore[attr-defined]
    assert model_server.requests == []


async def test_two_agents_at_once_see_only_their_own_tools(
    plugin_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    def script(request: ResponsesRequest) -> Reply:
        agent = request.last_user_text()
        if request.items_of_type("function_call_output"):
            return Message(f"{agent} done")
        return call(f"tool_{agent}", {}, agent=agent)

    model_server.script = script
    calls: list[str] = []
    both_inside = asyncio.Event()

    def tool(name: str) -> Any:
        async def run(args: dict[str, Any]) -> str:
            calls.append(name)
            if len(calls) == 2:
                both_inside.set()
            # A barrier: each call returns only once both turns are inside a tool call.
            await asyncio.wait_for(both_inside.wait(), 30)
            return f"{name} ran"

        return run

    async with await PluginClient.spawn(
        env=plugin_env, tools={"tool_alpha": tool("tool_alpha"), "tool_beta": tool("tool_beta")}
    ) as plugin:
        await plugin.initialize(host_config())
        turns = []
        for agent in ("alpha", "beta"):
            ws = tmp_path / agent
            ws.mkdir()
            turns.append(
                plugin.start_turn(
                    f"t-{agent}", AgentContext(agent, ws), agent, tools=[ToolSpec(f"tool_{agent}")]
                )
            )
        results = await asyncio.gather(*(t.result() for t in turns))
    assert [r.status for r in results] == ["completed", "completed"]
    assert sorted(calls) == ["tool_alpha", "tool_beta"]
    for request in model_server.requests:
        agent = request.last_user_text()
        other = "beta" if agent == "alpha" else "alpha"
        names = request.tool_names()
        assert f"{mcp_namespace(server_name(agent))}.tool_{agent}" in names
        assert not any(other in name for name in names), names


async def test_the_bridge_is_given_inline_and_config_toml_is_never_edited(
    plugin_env: dict[str, str],
    tmp_path: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
    socket_dir: Path,
) -> None:
    """No registration: codex gets each agent's MCP server per run (or per thread), so nothing is
    written to the shared config.toml, and an old registration of the same name (round 1 wrote
    them disabled) neither disables nor changes the server codex is given."""
    config = codex_home / "config.toml"
    config.write_text(
        config.read_text()
        + f'\n[mcp_servers.{server_name("agent-1")}]\ncommand = "/old/plugin"\n'
        + 'args = ["mcp-host"]\nenabled = false\n'
    )
    before = config.read_bytes()
    agents = [f"agent-{i}" if i % 2 else f"Agent {i}/ü" for i in range(4)]
    seen: list[str] = []

    def script(request: ResponsesRequest) -> Reply:
        agent = request.last_user_text()
        if request.items_of_type("function_call_output"):
            return Message(f"{agent} done")
        return call("whoami", {}, agent=agent)

    model_server.script = script
    async with await PluginClient.spawn(
        env=plugin_env, tools={"whoami": lambda args: seen.append("x") or "ok"}
    ) as one:
        await one.initialize(host_config())
        turns = []
        for i, agent in enumerate(agents):
            ws = tmp_path / f"ws{i}"
            ws.mkdir()
            turns.append(
                one.start_turn(f"t-{i}", AgentContext(agent, ws), agent, tools=[ToolSpec("whoami")])
            )
        results = await asyncio.gather(*(t.result() for t in turns))
    assert [r.status for r in results] == ["completed"] * 4
    assert len(seen) == 4
    assert config.read_bytes() == before


@pytest.mark.one_engine
def test_server_names_are_valid_and_distinct() -> None:
    ids = [
        "cx",
        "a-b",
        "a_b",
        "a b",
        "ü",
        "x" * 128,
        "x" * 127 + "y",
        "../../etc/passwd",
        "a.b",
        "A",
    ]
    names = [server_name(i) for i in ids]
    assert len(set(names)) == len(ids)
    assert len({mcp_namespace(n) for n in names}) == len(ids)
    for name in names:
        assert name.startswith("plexum-host-") and len(name) <= 64
        assert all(c.isascii() and (c.isalnum() or c in "_-") for c in name)


@pytest.mark.one_engine
def test_socket_paths_are_short_and_stable(tmp_path: Path) -> None:
    home = tmp_path / ("deep" * 30)
    one = socket_path("x" * 128, home, Path("/tmp/plexum-s"))
    assert one == socket_path("x" * 128, home, Path("/tmp/plexum-s"))
    assert len(os.fsencode(one)) < 100
    assert one != socket_path("x" * 127, home, Path("/tmp/plexum-s"))


def _mcp_exchange(env: dict[str, str], command: list[str] | None = None) -> list[dict[str, Any]]:
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "x", "arguments": {}},
        },
    ]
    done = subprocess.run(
        command or relay_command(),
        input="".join(json.dumps(m) + "\n" for m in messages),
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.one_engine
def test_mcp_host_outside_a_turn_answers_with_no_tools(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PLEXUM_MCP_SOCKET": str(tmp_path / "nobody.sock"),
        "PLEXUM_MCP_AGENT_ID": "cx",
        "PLEXUM_MCP_KEY_FILE": str(tmp_path / "nobody.key"),
    }
    answers = _mcp_exchange(env)
    assert [a["id"] for a in answers] == [1, 2, 3]
    assert answers[0]["result"]["protocolVersion"] == "2025-06-18"
    assert answers[1]["result"] == {"tools": []}
    assert answers[2]["result"]["isError"] is True
    assert "no turn of this agent is running" in answers[2]["result"]["content"][0]["text"]
    # Without its environment it still answers instead of crashing codex.
    bare = {k: v for k, v in os.environ.items() if not k.startswith("PLEXUM_MCP")}
    assert _mcp_exchange(bare)[1]["result"] == {"tools": []}
    # The console script's `mcp-host` is the same relay.
    assert _mcp_exchange(env, [plugin_script(), "mcp-host"]) == answers


# The plugin's listener judges the hellos; codex (either engine) only runs the call that probes it.
@pytest.mark.one_engine
async def test_a_bridge_must_prove_the_agent_it_serves(
    plugin_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
    socket_dir: Path,
) -> None:
    """Any process that reaches the socket knows agent ids: the id alone (the hello of round 2,
    with which an agent called another's tools as that agent) is refused, and so is a wrong key;
    only the agent's own secret (random per plugin run, in a 0600 file) is taken."""
    sock = socket_path("cx", codex_home, socket_dir)
    key_file = key_path(sock)
    verdicts: dict[str, Any] = {}
    keys = [""]

    def hello(message: dict[str, Any]) -> Any:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(sock))
            s.sendall(json.dumps(message).encode() + b"\n")
            return json.loads(s.makefile().readline())

    def probe(args: dict[str, Any]) -> str:  # while cx's turn runs
        key = keys[0] = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key) == 64
        verdicts["another agent"] = hello({"agent_id": "intruder", "key": key})
        verdicts["the id alone"] = hello({"agent_id": "cx"})
        verdicts["a wrong key"] = hello({"agent_id": "cx", "key": "0" * 64})
        verdicts["the key"] = hello({"agent_id": "cx", "key": key})
        env = {**os.environ, "PLEXUM_MCP_SOCKET": str(sock), "PLEXUM_MCP_AGENT_ID": "intruder"}
        env["PLEXUM_MCP_KEY_FILE"] = str(key_file)
        verdicts["an intruder's relay"] = _mcp_exchange(env)[1]["result"]
        return "probed"

    model_server.enqueue(call("probe", {}, call_id="c1"), Message("ok"))
    async with await PluginClient.spawn(env=plugin_env, tools={"probe": probe}) as plugin:
        await plugin.initialize(host_config())
        turn = plugin.start_turn(
            "t-1", AgentContext("cx", workspace), "probe", tools=[ToolSpec("probe")]
        )
        assert (await turn.result()).status == "completed"
        stderr = "\n".join(plugin.stderr_tail)
    refused = {"ok": False, "error": "this bridge did not prove that it serves this agent"}
    assert verdicts == {
        "another agent": refused,
        "the id alone": refused,
        "a wrong key": refused,
        "the key": {"ok": True},
        "an intruder's relay": {"tools": []},  # it fell back to offering nothing
    }
    assert "refused a bridge presenting agent 'cx' without a key" in stderr
    assert keys[0] not in stderr  # never logged
    assert not key_file.exists()  # gone with the plugin
