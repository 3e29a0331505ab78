"""Crash safety across processes, and hostile agents and hosts: each test reproduces what broke,
with the real plugin process and the real codex, on both engines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext, ToolSpec
from plexum_openai_provider._bridge.names import mcp_namespace, server_name
from plexum_openai_provider._turn.thread_store import SESSION_FILE
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import FunctionCall, Hang, Message, ScriptedModelServer
from tests.conftest import host_config, records_of
from tests.helpers import codex_processes, processes_matching, unique_sleep, wait_until
from tests.raw_plugin import RawPlugin, turn_params


def leftovers(codex_home: Path, marker: str, plugin_pid: int | None = None) -> list[int]:
    return [p for p in codex_processes(codex_home) + processes_matching(marker) if p != plugin_pid]


async def start_long_tool_turn(
    plugin: RawPlugin, model_server: ScriptedModelServer, ws: Path, marker: str, turn: str
) -> None:
    model_server.enqueue(FunctionCall("exec_command", json.dumps({"cmd": marker})))
    await plugin.submit(turn, "turn/start", turn_params(turn, "cx", ws, "go"))
    await wait_until(lambda: bool(processes_matching(marker)))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_ends_the_plugin_like_stdin_eof(
    codex_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
    sig: signal.Signals,
) -> None:
    marker = unique_sleep(600 + sig.value)
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    await start_long_tool_turn(plugin, model_server, workspace, marker, "t-1")
    started = time.monotonic()
    plugin.process.send_signal(sig)
    answer = await plugin.answer("t-1", timeout=30)
    assert answer["result"]["status"] == "cancelled"
    assert await asyncio.wait_for(plugin.process.wait(), 30) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 15
    await wait_until(lambda: leftovers(codex_home, marker) == [], timeout=5)
    stderr = await plugin.stderr_text()
    assert "Traceback" not in stderr and "never retrieved" not in stderr
    assert f"received {sig.name}" in stderr


async def test_kill_9_of_the_plugin_leaves_nothing_and_the_next_plugin_serves_at_once(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, codex_home: Path
) -> None:
    marker = unique_sleep(611)
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    first = await plugin.request("t-0", "turn/start", turn_params("t-0", "cx", workspace, "before"))
    thread = first["result"]["thread_id"]
    await start_long_tool_turn(plugin, model_server, workspace, marker, "t-1")
    assert leftovers(codex_home, marker, plugin.process.pid)
    killed = time.monotonic()
    plugin.process.kill()
    await plugin.process.wait()
    # The watchdog ends codex, its shell child and the relay within moments.
    await wait_until(lambda: leftovers(codex_home, marker) == [], timeout=5)
    gone = time.monotonic() - killed
    second = await RawPlugin.spawn(codex_env)
    await second.initialize()
    served = time.monotonic()
    answer = await second.request("t-2", "turn/start", turn_params("t-2", "cx", workspace, "after"))
    assert answer["result"]["status"] == "completed", answer
    assert answer["result"]["thread_id"] == thread
    print(
        f"leftovers gone {gone:.2f} s after kill -9; next turn served in"
        f" {time.monotonic() - served:.2f} s"
    )
    assert await second.close() == 0
    assert leftovers(codex_home, marker) == []


async def test_two_plugins_on_one_agent(
    codex_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    engine: str,
) -> None:
    one = await RawPlugin.spawn(codex_env)
    two = await RawPlugin.spawn(codex_env)
    await one.initialize()
    await two.initialize()
    model_server.enqueue(Hang())
    await one.submit("long", "turn/start", turn_params("t-1", "cx", workspace, "long"))
    await wait_until(lambda: len(model_server.requests) == 1)
    busy = await two.request(1, "turn/start", turn_params("t-2", "cx", workspace, "me too"))
    assert busy["error"]["code"] == -32001
    assert f"plugin process {one.process.pid}" in busy["error"]["data"]["holder"]
    consume = await two.request(
        2,
        "session/consume",
        {"agent": {"id": "cx", "workspace": str(workspace)}, "block_ids": ["x"]},
    )
    assert consume["error"]["code"] == -32001
    await one.request("c", "turn/cancel", {"turn_id": "t-1"})
    assert (await one.answer("long"))["result"]["status"] == "cancelled"
    later = await two.request(3, "turn/start", turn_params("t-3", "cx", workspace, "now?"))
    if engine == "app-server":
        # The first plugin's app-server keeps the thread loaded (and codex's writer lock): the
        # agent stays with it until it lets go (idle unload, or its end).
        assert later["error"]["code"] == -32001
        assert "another codex process" in later["error"]["data"]["holder"]
        assert await one.close() == 0
        later = await two.request(4, "turn/start", turn_params("t-4", "cx", workspace, "now"))
    else:
        await one.close()
    assert later["result"]["status"] == "completed", later
    texts = model_server.requests[-1].user_texts()
    assert "long" in texts and texts[-1] in ("now?", "now")
    assert await two.close() == 0


@pytest.mark.one_engine
async def test_one_workspace_belongs_to_one_agent(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    first = await plugin.request(1, "turn/start", turn_params("t-1", "cx", workspace, "mine"))
    assert first["result"]["status"] == "completed"
    # Another plugin process of the same user, at the same time, sees the claim.
    owners_plugin, plugin = plugin, await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    other = await plugin.request(
        2, "turn/start", turn_params("t-2", "intruder", workspace, "mine?")
    )
    assert other["error"]["code"] == -32602
    assert other["error"]["data"]["field"] == "agent.workspace"
    owner = records_of(codex_env, workspace) / "agent"
    assert "'cx'" in other["error"]["message"] and str(owner) in other["error"]["message"]
    assert await owners_plugin.close() == 0
    owner.unlink()  # handed over
    moved = await plugin.request(3, "turn/start", turn_params("t-3", "intruder", workspace, "now"))
    assert moved["result"]["status"] == "completed"
    assert len(model_server.requests) == 2
    assert await plugin.close() == 0


async def test_a_fifo_as_an_older_session_file_freezes_nobody(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    # What an unconfined agent could leave where the older layout kept the thread id.
    os.mkfifo(a / ".plexum-codex-session")
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        turns = [
            plugin.start_turn(f"t-{n}", AgentContext(n, w), "hi") for n, w in (("a", a), ("b", b))
        ]
        events = await asyncio.wait_for(asyncio.gather(*(_events(t) for t in turns)), 60)
    assert [r.status for _, r in events] == ["completed", "completed"]
    assert not (a / ".plexum-codex-session").exists()  # not moved in: removed
    assert (records_of(codex_env, a) / SESSION_FILE).read_text().strip() == events[0][1].thread_id


async def _events(turn: Any) -> tuple[list[Any], Any]:
    return [e async for e in turn], await turn.result()


@contextlib.contextmanager
def unwritable(folder: Path, how: str) -> Iterator[None]:
    """``folder`` read-only or full: a small tmpfs mounted over it (root), or its mode (others)."""
    if os.geteuid() != 0:
        if how == "full":
            pytest.skip("a full filesystem needs a mount, which needs root")
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(0o700)
        return
    options = "ro" if how == "read-only" else "size=8k"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"root, but cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        if how == "full":
            with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
                while True:
                    f.write(b"x" * 4096)
                    f.flush()
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.mark.one_engine
@pytest.mark.parametrize("how", ["read-only", "full"])
async def test_a_state_folder_that_cannot_take_the_thread_is_refused_before_the_model(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, how: str
) -> None:
    state = Path(codex_env["PLEXUM_STATE_DIR"])  # where the workspace's records go
    state.mkdir(mode=0o700)
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    with unwritable(state, how):
        answer = await plugin.request(1, "turn/start", turn_params("t-1", "cx", workspace, "hi"))
    assert answer["error"]["code"] == -32603, answer
    assert answer["error"]["data"]["path"].startswith(str(state))
    assert str(workspace) in answer["error"]["message"]
    assert model_server.requests == []
    retry = await plugin.request(2, "turn/start", turn_params("t-2", "cx", workspace, "hi again"))
    assert retry["result"]["status"] == "completed"
    assert await plugin.close() == 0


@pytest.mark.one_engine
async def test_a_codex_home_that_cannot_be_written_is_refused_before_the_model(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, codex_home: Path
) -> None:
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize(host_config(engine="exec"))
    sessions = codex_home / "sessions"
    sessions.mkdir(exist_ok=True)
    with unwritable(sessions, "read-only"):
        answer = await plugin.request(1, "turn/start", turn_params("t-1", "cx", workspace, "hi"))
    assert answer["error"]["code"] == -32603, answer
    assert (
        "CODEX_HOME" in answer["error"]["message"] and str(sessions) in answer["error"]["message"]
    )
    assert answer["error"]["data"]["path"] == str(sessions)
    assert model_server.requests == []
    assert await plugin.close() == 0
    assert "Traceback" not in await plugin.stderr_text()


async def test_malformed_tool_replies_reach_the_model_as_errors_that_say_why(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    replies: dict[str, Any] = {
        "not_a_list": {"content": "plain text", "is_error": False},
        "bad_flag": {"content": [{"type": "text", "text": "fine"}], "is_error": "yes"},
        "only_audio": {"content": [{"type": "audio", "data": "AAAA", "mime_type": "audio/wav"}]},
        "surrogate": {"content": [{"type": "text", "text": "bad \ud800 text"}]},
        "image": {"content": [{"type": "image", "data": "iVBORw0KGgo=", "mime_type": "image/png"}]},
    }
    ns = mcp_namespace(server_name("cx"))
    model_server.enqueue(
        [FunctionCall(name, "{}", call_id=f"c_{name}", namespace=ns) for name in replies],
        Message("done"),
    )
    tools = {name: (lambda args, reply=reply: reply) for name, reply in replies.items()}
    async with await PluginClient.spawn(env=codex_env, tools=tools) as plugin:
        await plugin.initialize(host_config())
        turn = plugin.start_turn(
            "t-1", AgentContext("cx", workspace), "go", tools=[ToolSpec(n) for n in replies]
        )
        _, result = await _events(turn)
    assert result.status == "completed"
    sent = {
        item["call_id"]: json.dumps(item["output"], ensure_ascii=False)
        for item in model_server.requests[1].items_of_type("function_call_output")
    }
    assert "malformed: content is str, not a list" in sent["c_not_a_list"]
    assert "is_error must be true or false, not 'yes'" in sent["c_bad_flag"]
    assert "of type 'audio' dropped" in sent["c_only_audio"]
    assert "bad \ufffd text" in sent["c_surrogate"]
    # codex 0.163 says it when a model cannot take the image: the model is told, never silence.
    assert "image" in sent["c_image"]


@pytest.mark.one_engine
async def test_what_a_killed_consume_left_is_swept(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, codex_home: Path
) -> None:
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        thread = (
            await plugin.start_turn("t-1", AgentContext("cx", workspace), "hi").result()
        ).thread_id
    [rollout] = list((codex_home / "sessions").rglob(f"*{thread}.jsonl"))
    dead = 2**22 + 12345  # a pid that does not run: the writer was killed
    leftover = rollout.with_name(f".{rollout.name}.{dead}.abcd1234.tmp")
    leftover.write_bytes(rollout.read_bytes())
    live = rollout.with_name(f".{rollout.name}.{os.getpid()}.live0000.tmp")
    live.write_bytes(b"a rewrite in progress")
    async with await PluginClient.spawn(env=codex_env) as plugin:  # at start-up
        await plugin.initialize(host_config())
        await wait_until(lambda: not leftover.exists(), timeout=10)
    assert live.exists()  # its writer is alive: not touched
    live.unlink()
    leftover.write_bytes(b"x")
    async with await PluginClient.spawn(env=codex_env) as plugin:  # and at the next consume
        await plugin.initialize(host_config())
        await plugin.consume(AgentContext("cx", workspace), ["nope"])
        assert not leftover.exists()


async def test_a_slow_login_shell_leaves_nothing_behind(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, engine: str
) -> None:
    marker = unique_sleep(8)
    home = Path(codex_env["HOME"])
    (home / ".bashrc").write_text(f"{marker}\n")  # pyenv, conda and nvm set-ups can be this slow
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    for n in range(3):
        answer = await plugin.request(
            n, "turn/start", turn_params(f"t-{n}", "cx", workspace, f"hi {n}")
        )
        assert answer["result"]["status"] == "completed"
        if engine == "exec":
            # codex exec has ended: what it left in another session is ended with its run.
            await wait_until(lambda: processes_matching(marker) == [], timeout=3)
    assert await plugin.close() == 0
    await wait_until(lambda: processes_matching(marker) == [], timeout=3)
