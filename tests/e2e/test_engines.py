"""What each engine owes the host beyond a plain turn: streamed text, live blocks, tool lists that
change, and surviving a codex that dies or wedges. The real codex, both engines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import (
    AgentContext,
    CodexProvider,
    Event,
    HostConfig,
    TextDelta,
    ToolCall,
    ToolOutput,
    ToolResult,
    ToolSpec,
    TurnRequest,
    TurnResult,
)
from plexum_openai_provider._bridge.names import mcp_namespace, server_name
from plexum_openai_provider._codex.binary import bundled_codex
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import (
    FunctionCall,
    Hang,
    Message,
    ResponsesRequest,
    ScriptedModelServer,
    Wait,
)
from tests.conftest import OPEN_PROVIDERS, host_config
from tests.helpers import codex_processes, plugin_script, texts, wait_until

NS = mcp_namespace(server_name("cx"))


async def make(env: dict[str, str], **config: Any) -> tuple[CodexProvider, list[Any]]:
    calls: list[Any] = []

    async def tools(call: Any) -> ToolOutput:
        calls.append(call)
        return ToolOutput(f"{call.name} answered")

    provider = await CodexProvider.create(
        HostConfig.parse(host_config(**config)),
        env={**env, "PLEXUM_SOCKET_DIR": f"/tmp/plexum-test-{os.getpid()}"},
        tool_handler=tools,
    )
    OPEN_PROVIDERS.append(provider)
    return provider, calls


async def timed_turn(
    provider: CodexProvider, ws: Path, prompt: str, **kw: Any
) -> tuple[list[tuple[float, Event]], TurnResult]:
    start = time.monotonic()
    turn = await provider.start_turn(TurnRequest(AgentContext("cx", ws), prompt, **kw))
    events = [(time.monotonic() - start, e) async for e in turn]
    return events, await turn.result()


async def test_text_streams_as_the_model_writes_it_on_app_server(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, engine: str
) -> None:
    pieces = ("Hello ", "from a ", "streaming model")
    model_server.enqueue(Message("".join(pieces), deltas=pieces, delay_s=0.4))
    provider, _ = await make(codex_env)
    events, result = await timed_turn(provider, workspace, "stream please")
    assert result.status == "completed"
    texts = [(at, e.text) for at, e in events if isinstance(e, TextDelta)]
    assert "".join(text for _, text in texts) == "".join(pieces)
    if engine == "app-server":
        assert [text for _, text in texts] == list(pieces)
        # The first piece reached the host while the model was still writing the rest.
        assert texts[-1][0] - texts[0][0] > 0.6
    else:
        assert len(texts) == 1  # codex exec prints whole messages only


async def test_blocks_reach_the_host_while_the_turn_runs(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    seen = threading.Event()
    model_server.enqueue(
        FunctionCall("exec_command", json.dumps({"cmd": "echo live-block"}), call_id="c_live"),
        # The model answers only once the host has the call's result: without live blocks the
        # turn would wait out the barrier.
        Wait(seen, Message("after the block"), timeout_s=20),
    )
    provider, _ = await make(codex_env)
    started = time.monotonic()
    turn = await provider.start_turn(TurnRequest(AgentContext("cx", workspace), "go"))
    events: list[Event] = []
    async for event in turn:
        events.append(event)
        if isinstance(event, ToolResult) and event.block_id == "c_live":
            seen.set()
    result = await turn.result()
    assert result.status == "completed"
    assert time.monotonic() - started < 15, "the block came only after the turn"
    assert [e.block_id for e in events if isinstance(e, ToolCall)] == ["c_live"]
    assert [e.block_id for e in events if isinstance(e, ToolResult)] == ["c_live"]
    result_event = next(e for e in events if isinstance(e, ToolResult))
    assert "live-block" in result_event.output
    assert "after the block" in texts(events)


async def test_tool_lists_that_change_between_turns(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    def offered(request: ResponsesRequest) -> set[str]:
        return {n.split(".", 1)[1] for n in request.tool_names() if n.startswith(NS + ".")}

    provider, calls = await make(codex_env)
    a, b = ToolSpec("tool_a"), ToolSpec("tool_b", "the new one")
    _, first = await timed_turn(provider, workspace, "one", tools=(a,))
    assert offered(model_server.requests[-1]) == {"tool_a"}
    model_server.enqueue(FunctionCall("tool_b", "{}", call_id="c_b", namespace=NS), Message("ok"))
    _, second = await timed_turn(provider, workspace, "two", tools=(a, b))
    assert offered(model_server.requests[-2]) == {"tool_a", "tool_b"}
    assert [c.name for c in calls] == ["tool_b"]
    _, third = await timed_turn(provider, workspace, "three")
    assert offered(model_server.requests[-1]) == set()
    _, fourth = await timed_turn(provider, workspace, "four", tools=(a,))
    assert offered(model_server.requests[-1]) == {"tool_a"}
    assert {r.thread_id for r in (first, second, third, fourth)} == {first.thread_id}
    assert [r.status for r in (first, second, third, fourth)] == ["completed"] * 4
    # The thread kept its whole history through the reloads.
    assert model_server.requests[-1].user_texts()[-4:] == ["one", "two", "three", "four"]


async def test_codex_killed_mid_turn_fails_it_and_the_next_turn_resumes(
    codex_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
    engine: str,
) -> None:
    provider, _ = await make(codex_env)
    _, first = await timed_turn(provider, workspace, "before")
    model_server.enqueue(Hang())
    turn = await provider.start_turn(TurnRequest(AgentContext("cx", workspace), "killed"))
    await wait_until(lambda: len(model_server.requests) == 2)
    victims = codex_processes(codex_home)
    assert victims
    for pid in victims:
        # One may end by itself meanwhile (a short-lived process of codex's that names the home).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    events = [e async for e in turn]
    result = await turn.result()
    assert result.status == "failed" and result.error is not None
    assert result.error.code == "codex_exited", result.error
    assert ("app-server exited" in result.error.message) == (engine == "app-server")
    assert events[-1].type == "error"  # type: ignore[union-attr]
    _, after = await timed_turn(provider, workspace, "after")
    assert after.status == "completed" and after.thread_id == first.thread_id
    assert model_server.requests[-1].user_texts()[-3:] == ["before", "killed", "after"]
    if engine == "app-server":
        assert provider._engine.starts == 2  # type: ignore[attr-defined]


async def test_a_wedged_codex_is_stopped_and_replaced(
    codex_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
) -> None:
    provider, _ = await make(codex_env, idle_timeout_s=1.5)
    _, first = await timed_turn(provider, workspace, "before")
    model_server.enqueue(Hang())
    turn = await provider.start_turn(TurnRequest(AgentContext("cx", workspace), "wedged"))
    await wait_until(lambda: len(model_server.requests) == 2)
    for pid in codex_processes(codex_home):
        os.kill(pid, signal.SIGSTOP)  # alive, holding everything, answering nothing
    started = time.monotonic()
    result = await asyncio.wait_for(turn.result(), 60)
    assert result.error is not None and result.error.code == "timeout"
    assert time.monotonic() - started < 20
    assert codex_processes(codex_home) == [] or provider.engine_info.name == "app-server"
    _, after = await timed_turn(provider, workspace, "after")
    assert after.status == "completed" and after.thread_id == first.thread_id


async def test_extra_args_config_overrides_apply_on_both_engines(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    provider, _ = await make(codex_env, extra_args=["-c", 'model="model-from-extra-args"'])
    _, result = await timed_turn(provider, workspace, "which model?")
    assert result.status == "completed"
    assert model_server.requests[-1].body["model"] == "model-from-extra-args"


@pytest.mark.one_engine
async def test_a_codex_newer_than_the_verified_ones_gets_the_app_server(
    codex_env: dict[str, str], workspace: Path, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    """The default engine follows the probe, not a list: a codex that says it is 0.999.0 (the
    codex under test, renamed) runs on the app-server and is reported as newer."""
    real = host_config().get("binary") or bundled_codex()
    newer = tmp_path / "codex"
    newer.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "codex-cli 0.999.0"; exit 0; fi\n'
        f'exec "{real}" "$@"\n'
    )
    newer.chmod(0o755)
    config = {k: v for k, v in host_config(binary=str(newer)).items() if k != "engine"}
    async with await PluginClient.spawn(env=codex_env) as plugin:
        init = await plugin.initialize(config)
        assert init["engine"] == {
            "name": "app-server",
            "requested": "app-server",
            "fallback_reason": None,
        }
        assert init["codex"]["version"] == "0.999.0"
        assert (init["codex"]["verified"], init["codex"]["newer_than_verified"]) == (False, True)
        result = await plugin.start_turn("t-1", AgentContext("cx", workspace), "hi").result()
        assert result.status == "completed"
    done = subprocess.run(
        [plugin_script(), "doctor", "--config", str(write_config(tmp_path, config))],
        env=codex_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "engine app-server: its probe and handshake passed on codex 0.999.0" in done.stdout
    assert "codex 0.999.0 is newer than the versions the whole suite passed on" in done.stdout


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps(config))
    return path
