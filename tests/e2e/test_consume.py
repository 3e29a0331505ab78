"""Tool-call blocks and the consume mirror, with the real codex."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import (
    AgentBusyError,
    AgentContext,
    CodexProvider,
    HostConfig,
    InvalidRequestError,
    SessionFormatError,
    ToolCall,
    ToolOutput,
    ToolResult,
    ToolSpec,
    TurnRequest,
)
from plexum_openai_provider._bridge.names import mcp_namespace, server_name
from plexum_openai_provider._codex.consume import rewrite_rollout
from plexum_openai_provider._codex.rollout import RolloutLocator
from plexum_openai_provider._codex.writer_lock import thread_writer_lock
from plexum_openai_provider._turn.records import records_dir
from plexum_openai_provider._turn.thread_store import read_thread_id
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import (
    FunctionCall,
    Message,
    ResponsesRequest,
    ScriptedModelServer,
)
from tests.conftest import OPEN_PROVIDERS, codex_at_least, host_config
from tests.helpers import texts, wait_until

NS = mcp_namespace(server_name("cx"))
HEAVY = "HEAVY-OUTPUT " * 200
SECRET_ARGS = {"query": "the heavy original arguments"}
MARKER = "...(tool called)"


async def provider_for(env: dict[str, str], handler: Any = None, **config: Any) -> CodexProvider:
    async def default(call: Any) -> ToolOutput:
        return ToolOutput(HEAVY)

    provider = await CodexProvider.create(
        HostConfig.parse(host_config(**config)),
        env={**env, "PLEXUM_SOCKET_DIR": f"/tmp/plexum-test-{os.getpid()}"},
        tool_handler=handler or default,
    )
    OPEN_PROVIDERS.append(provider)
    return provider


async def run(provider: CodexProvider, ws: Path, prompt: str, **kw: Any) -> tuple[list[Any], Any]:
    turn = await provider.start_turn(TurnRequest(AgentContext("cx", ws), prompt, **kw))
    events = [e async for e in turn]
    return events, await turn.result()


def rollout_of(provider: CodexProvider, ws: Path) -> Path:
    thread = read_thread_id(records_dir(provider.state_dir, ws))
    assert thread is not None
    path = RolloutLocator(provider.codex_home).find(thread)
    assert path is not None
    return path


def sent_outputs(request: ResponsesRequest) -> dict[str, Any]:
    return {
        i["call_id"]: i.get("output")
        for i in request.input
        if i.get("type") in ("function_call_output", "custom_tool_call_output")
    }


def sent_calls(request: ResponsesRequest) -> dict[str, Any]:
    return {
        i["call_id"]: i.get("arguments", i.get("input"))
        for i in request.input
        if i.get("type") in ("function_call", "custom_tool_call")
    }


def block_of(server: ScriptedModelServer, call: FunctionCall) -> ToolCall:
    """The block the host is shown for a scripted call (code mode: the ``exec`` that makes it)."""
    if server.code_mode:
        script = call.as_code_mode()
        return ToolCall(str(call.call_id), "exec", script.input, "functions")
    return ToolCall(str(call.call_id), call.name, call.arguments, call.namespace)


@pytest.mark.catalog("scripted", "code-mode")
async def test_blocks_carry_codex_call_ids_and_consume_reaches_the_model(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    provider = await provider_for(codex_env)
    heavy = FunctionCall("search", json.dumps(SECRET_ARGS), call_id="call_heavy", namespace=NS)
    shell = FunctionCall(
        "exec_command", json.dumps({"cmd": "echo shell-ran"}), call_id="call_shell"
    )
    model_server.enqueue(heavy, shell, Message("found it"))
    events, result = await run(provider, workspace, "search", tools=(ToolSpec("search"),))
    assert result.status == "completed"
    calls = [e for e in events if isinstance(e, ToolCall)]
    results = {e.block_id: e for e in events if isinstance(e, ToolResult)}
    assert calls == [block_of(model_server, heavy), block_of(model_server, shell)]
    assert HEAVY.strip() in results["call_heavy"].output and not results["call_heavy"].is_error
    assert "shell-ran" in results["call_shell"].output
    # Blocks come before the usage event, which is last.
    assert type(events[-1]).__name__ == "Usage"
    rollout = rollout_of(provider, workspace).read_text()
    assert '"call_id":"call_heavy"' in rollout and '"call_id":"call_shell"' in rollout

    # A second turn: its blocks are only its own.
    model_server.enqueue(
        FunctionCall("search", "{}", call_id="call_two", namespace=NS), Message("again")
    )
    events2, _ = await run(provider, workspace, "search again", tools=(ToolSpec("search"),))
    assert [e.block_id for e in events2 if isinstance(e, ToolCall)] == ["call_two"]

    before = rollout_of(provider, workspace).read_bytes().splitlines(keepends=True)
    # Another agent id cannot consume in this agent's workspace.
    with pytest.raises(InvalidRequestError, match="is the workspace of agent 'cx'") as refused:
        await provider.consume(AgentContext("intruder", workspace), ["call_heavy"])
    assert refused.value.field == "agent.workspace"
    assert rollout_of(provider, workspace).read_bytes().splitlines(keepends=True) == before
    result = await provider.consume(
        AgentContext("cx", workspace), ["call_heavy", "nope", "call_two"]
    )
    assert (result.consumed, result.not_found) == (["call_heavy", "call_two"], ["nope"])
    after = rollout_of(provider, workspace).read_bytes().splitlines(keepends=True)
    # Only the calls and their outputs changed; every other line is byte for byte the same.
    # A function call's arguments become "{}" (call_two had "{}" already), code mode's
    # JavaScript becomes the marker.
    consumed_call = MARKER if model_server.code_mode else "{}"
    assert len(after) == len(before)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert len(changed) == (4 if model_server.code_mode else 3)
    for i in changed:
        old, new = json.loads(before[i]), json.loads(after[i])
        assert old.get("ordinal") == new.get("ordinal") and old["timestamp"] == new["timestamp"]
        payload = new["payload"]
        assert payload.get("arguments", payload.get("input", payload.get("output"))) in (
            consumed_call,
            MARKER,
        )

    _, third = await run(provider, workspace, "what did you find?")
    assert third.status == "completed"
    request = model_server.requests[-1]
    assert sent_outputs(request)["call_heavy"] == MARKER
    assert sent_calls(request)["call_heavy"] == consumed_call
    assert HEAVY not in request.raw and "the heavy original arguments" not in request.raw
    assert "shell-ran" in json.dumps(sent_outputs(request)["call_shell"])  # not consumed

    # Idempotent: consuming again reports it consumed, and changes nothing.
    snapshot = rollout_of(provider, workspace).read_bytes()
    again = await provider.consume(AgentContext("cx", workspace), ["call_heavy"])
    assert again.consumed == ["call_heavy"]
    assert rollout_of(provider, workspace).read_bytes() == snapshot


async def test_is_error_results_are_flagged(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    async def handler(call: Any) -> ToolOutput:
        return ToolOutput("quota exceeded", is_error=True)

    provider = await provider_for(codex_env, handler)
    model_server.enqueue(FunctionCall("t", "{}", call_id="c_err", namespace=NS), Message("ok"))
    events, _ = await run(provider, workspace, "x", tools=(ToolSpec("t"),))
    result = next(e for e in events if isinstance(e, ToolResult))
    assert result.is_error and "Error: quota exceeded" in result.output
    assert "Error: quota exceeded" in json.dumps(sent_outputs(model_server.requests[1])["c_err"])


async def test_a_call_cut_off_by_cancel_is_reported_as_codex_recorded_it(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    entered = asyncio.Event()

    async def handler(call: Any) -> ToolOutput:
        entered.set()
        await asyncio.sleep(60)
        return ToolOutput("never")

    provider = await provider_for(codex_env, handler)
    model_server.enqueue(
        FunctionCall("t", '{"n": 1}', call_id="c_cut", namespace=NS), Message("no")
    )
    turn = await provider.start_turn(
        TurnRequest(AgentContext("cx", workspace), "x", tools=(ToolSpec("t"),))
    )
    await asyncio.wait_for(entered.wait(), 30)
    turn.cancel()
    events = [e async for e in turn]
    assert (await turn.result()).status == "cancelled"
    assert [e for e in events if isinstance(e, ToolCall)] == [
        ToolCall("c_cut", "t", '{"n": 1}', NS)
    ]
    # codex, stopped with SIGINT, records an output for the call it cut off (0.163: "aborted by
    # user after …"); a call with no output at all gets its tool_call only (see the unit test).
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [r.block_id for r in results] == ["c_cut"] and "aborted" in results[0].output


async def test_consume_while_a_turn_runs_is_deferred_and_loses_nothing(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def handler(call: Any) -> ToolOutput:
        if call.arguments.get("wait"):
            entered.set()
            await release.wait()
        return ToolOutput(HEAVY)

    provider = await provider_for(codex_env, handler)
    agent = AgentContext("cx", workspace)
    model_server.enqueue(FunctionCall("t", "{}", call_id="c_first", namespace=NS), Message("first"))
    await run(provider, workspace, "one", tools=(ToolSpec("t"),))
    model_server.enqueue(
        FunctionCall("t", '{"wait": true}', call_id="c_second", namespace=NS),
        Message("second done"),
    )
    turn = await provider.start_turn(TurnRequest(agent, "two", tools=(ToolSpec("t"),)))
    await asyncio.wait_for(entered.wait(), 30)
    rewrites: list[bytes] = []
    original = provider._consumer._rewrite

    def spy(path: Path, *args: Any) -> Any:
        rewrites.append(path.read_bytes())  # the rollout as the rewrite finds it
        return original(path, *args)

    provider._consumer._rewrite = spy  # type: ignore[method-assign]
    consume = asyncio.create_task(provider.consume(agent, ["c_first", "c_second"]))
    # The consume waits on the agent's lock (not on codex's writer lock, further on).
    lock = provider._agent_lock("cx")
    await wait_until(lambda: bool(lock._waiters))  # type: ignore[attr-defined]
    assert rewrites == [] and not consume.done()
    release.set()
    events = [e async for e in turn]
    assert (await turn.result()).status == "completed"
    result = await asyncio.wait_for(consume, 30)
    assert result.consumed == ["c_first", "c_second"]
    assert "second done" in texts(events)
    # When the rewrite began, the turn had ended: its answer was in the file.
    [seen] = rewrites
    assert b"second done" in seen and b'"task_complete"' in seen
    records = [
        json.loads(line) for line in rollout_of(provider, workspace).read_text().splitlines()
    ]
    # Nothing the turn recorded was lost: its answer and its end are in the file.
    assert any(
        r["type"] == "response_item" and "second done" in json.dumps(r["payload"]) for r in records
    )
    assert records[-1]["payload"].get("type") == "task_complete"
    outputs = [
        r["payload"]["output"]
        for r in records
        if r["payload"].get("type") == "function_call_output"
    ]
    assert outputs == [MARKER, MARKER]


@pytest.mark.skipif(
    not codex_at_least("0.163"), reason="codex before 0.163 has no thread writer lock"
)
async def test_a_turn_during_a_rewrite_by_another_process_is_refused(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, codex_home: Path
) -> None:
    provider = await provider_for(codex_env)
    await run(provider, workspace, "hello")
    thread = read_thread_id(records_dir(provider.state_dir, workspace))
    assert thread is not None
    path = rollout_of(provider, workspace)
    await provider._engine.release_thread(thread)  # the app-server holds a loaded thread's lock
    before = path.read_bytes()
    holding, done = threading.Event(), threading.Event()

    def rewrite_in_progress() -> None:
        with thread_writer_lock(codex_home, thread):
            holding.set()
            done.wait(30)

    worker = threading.Thread(target=rewrite_in_progress)
    worker.start()
    assert holding.wait(10)
    try:
        # The plugin sees the writer lock held by another process and refuses before codex runs
        # (codex itself would fail "already has an active writer").
        with pytest.raises(AgentBusyError) as err:
            await run(provider, workspace, "resume now")
        assert thread in err.value.message
    finally:
        done.set()
        worker.join()
    assert path.read_bytes() == before  # nothing was written
    assert len(model_server.requests) == 1
    _, ok = await run(provider, workspace, "now it works")
    assert ok.status == "completed" and ok.thread_id == thread


def pad_rollout(path: Path, copies: int) -> None:
    """Make a real rollout big: repeat its last token_count event (which codex reads and skips on
    resume) and number every record's ordinal again, in order."""
    lines = path.read_bytes().splitlines(keepends=True)
    pad = next(line for line in reversed(lines) if b'"type":"token_count"' in line)
    at = len(lines) - 1
    padded = lines[:at] + [pad] * copies + lines[at:]
    out = [
        re.sub(rb'"ordinal":\d+', b'"ordinal":%d' % i, line, count=1)
        for i, line in enumerate(padded)
    ]
    path.write_bytes(b"".join(out))


KILLED_REWRITER = """
import sys
from pathlib import Path
from plexum_openai_provider._codex.consume import rewrite_rollout
path, thread, marker = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
print("ready", flush=True)
rewrite_rollout(path, thread, ["c_big"], marker)
print("done", flush=True)
"""


@pytest.mark.one_engine
async def test_kill_9_during_rewrites_always_leaves_a_file_codex_resumes(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    provider = await provider_for(codex_env)
    model_server.enqueue(
        FunctionCall("t", '{"a": 1}', call_id="c_big", namespace=NS), Message("ok")
    )
    await run(provider, workspace, "big", tools=(ToolSpec("t"),))
    thread = read_thread_id(records_dir(provider.state_dir, workspace))
    assert thread is not None
    path = rollout_of(provider, workspace)
    pad_rollout(path, 80_000)  # about 50 MB, so that a rewrite takes long enough to be hit
    _, resumed = await run(provider, workspace, "padded")
    assert resumed.status == "completed" and resumed.thread_id == thread
    # The only states a rewrite may leave: the original, or consumed with either marker.
    states = {hashlib.sha256(path.read_bytes()).hexdigest()}
    for marker in ("[X]", "[Y]"):
        copy = path.with_name("copy.jsonl")
        shutil.copy(path, copy)
        rewrite_rollout(copy, thread, ["c_big"], marker)
        states.add(hashlib.sha256(copy.read_bytes()).hexdigest())
        copy.unlink()
    assert len(states) == 3
    rng = random.Random(7)
    interrupted = 0
    for i in range(25):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_REWRITER, str(path), thread, "[X]" if i % 2 else "[Y]"],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        await asyncio.sleep(rng.uniform(0, 0.25))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        interrupted += proc.stdout.read() != b"done\n"
        proc.stdout.close()
        assert hashlib.sha256(path.read_bytes()).hexdigest() in states
    assert interrupted >= 5, f"only {interrupted} of 25 kills interrupted a rewrite"
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        leftover.unlink()  # what a killed rewriter leaves is a temporary beside the file
    _, result = await run(provider, workspace, "still there?")
    assert result.status == "completed" and result.thread_id == thread
    assert "ok" in model_server.requests[-1].assistant_texts()


@pytest.mark.one_engine
async def test_a_session_the_plugin_does_not_understand_is_left_untouched(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    provider = await provider_for(codex_env)
    model_server.enqueue(FunctionCall("t", "{}", call_id="c1", namespace=NS), Message("ok"))
    await run(provider, workspace, "x", tools=(ToolSpec("t"),))
    path = rollout_of(provider, workspace)
    lines = path.read_bytes().splitlines(keepends=True)
    meta = json.loads(lines[0])
    meta["payload"]["cli_version"] = "9.9.9"
    # A future format: outputs as objects, and a record without an ordinal.
    mutated = [json.dumps(meta, separators=(",", ":")).encode() + b"\n"]
    for line in lines[1:]:
        record = json.loads(line)
        if record["payload"].get("type") == "function_call_output":
            record["payload"]["output"] = {"blob": 1}
            line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
        mutated.append(line)
    path.write_bytes(b"".join(mutated))
    with pytest.raises(SessionFormatError) as err:
        await provider.consume(AgentContext("cx", workspace), ["c1"])
    assert "9.9.9" in err.value.message
    assert path.read_bytes() == b"".join(mutated)
    if not codex_at_least("0.163"):
        return  # older codex writes no ordinals at all
    no_ordinal = json.loads(lines[-1])
    del no_ordinal["ordinal"]
    compact = json.dumps(no_ordinal, separators=(",", ":")).encode()  # as codex writes
    path.write_bytes(b"".join(lines[:-1]) + compact + b"\n")
    with pytest.raises(SessionFormatError, match="ordinal"):
        await provider.consume(AgentContext("cx", workspace), ["c1"])


@pytest.mark.one_engine
async def test_an_items_id_allocation_goes_through_a_consume_to_the_resumed_codex(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    """codex 0.171 may give a response item an `id_allocation` (how it derived the item's id;
    tests/unit/test_rollout.py has its shape) and drops from the model's history an item whose
    allocation it cannot read back. A consumed call and output keep theirs, and the resumed codex
    sends the model both, consumed, with the rest of the thread's history."""
    provider = await provider_for(codex_env)
    model_server.enqueue(
        FunctionCall("t", json.dumps(SECRET_ARGS), call_id="c_alloc", namespace=NS), Message("ok")
    )
    await run(provider, workspace, "first", tools=(ToolSpec("t"),))
    path = rollout_of(provider, workspace)
    allocation = {"prefix": "fco", "salt": "c_alloc", "ordinal": 2, "value": 1}
    planted = []
    for line in path.read_bytes().splitlines(keepends=True):
        record = json.loads(line)
        if record["type"] == "response_item" and record["payload"].get("call_id") == "c_alloc":
            record["payload"]["id_allocation"] = allocation
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        planted.append(line)
    path.write_bytes(b"".join(planted))
    result = await provider.consume(AgentContext("cx", workspace), ["c_alloc"])
    assert result.consumed == ["c_alloc"]
    kept = [
        json.loads(line)["payload"]
        for line in path.read_bytes().splitlines()
        if b'"id_allocation"' in line
    ]
    assert [p["id_allocation"] for p in kept] == [allocation, allocation]
    _, second = await run(provider, workspace, "second", tools=(ToolSpec("t"),))
    assert second.status == "completed"
    request = model_server.requests[-1]
    assert sent_calls(request) == {"c_alloc": "{}"}
    assert sent_outputs(request) == {"c_alloc": MARKER}
    said = request.user_texts()
    assert [t for t in said if t.endswith(("first", "second"))] == said[-2:]
    assert "ok" in request.assistant_texts()
    assert '"id_allocation"' not in request.raw  # codex keeps it from the model


async def test_consume_through_the_plugin_and_a_compressed_archived_rollout(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, codex_home: Path
) -> None:
    import zstandard

    model_server.enqueue(FunctionCall("t", '{"q": 1}', call_id="c_z", namespace=NS), Message("ok"))
    env = {**codex_env, "PLEXUM_SOCKET_DIR": f"/tmp/plexum-test-{os.getpid()}"}
    async with await PluginClient.spawn(env=env, tools={"t": lambda args: HEAVY}) as plugin:
        await plugin.initialize(host_config())
        agent = AgentContext("cx", workspace)
        turn = plugin.start_turn("t-1", agent, "go", tools=[ToolSpec("t")])
        events = [e async for e in turn]
        assert [e.block_id for e in events if isinstance(e, ToolCall)] == ["c_z"]
        thread = (await turn.result()).thread_id
        # Move the rollout to archived_sessions, compressed, as codex's archive does.
        [path] = list((codex_home / "sessions").rglob(f"*{thread}.jsonl"))
        archived = codex_home / "archived_sessions" / (path.name + ".zst")
        archived.parent.mkdir()
        archived.write_bytes(zstandard.ZstdCompressor().compress(path.read_bytes()))
        original = path.read_bytes()
        path.unlink()
        answer = await plugin.consume(agent, ["c_z", "c_unknown"])
        assert answer == {"consumed": ["c_z"], "not_found": ["c_unknown"]}
        with pytest.raises(Exception) as err:
            await plugin.connection.request(
                "session/consume",
                {"agent": {"id": "cx", "workspace": str(workspace)}, "block_ids": "c_z"},
            )
        assert getattr(err.value, "code", None) == -32602
    text = zstandard.ZstdDecompressor().stream_reader(archived.read_bytes()).read()
    assert len(text.splitlines()) == len(original.splitlines())
    outputs = [
        json.loads(line)["payload"]["output"]
        for line in text.splitlines()
        if b'"type":"function_call_output"' in line
    ]
    assert outputs == [MARKER]
