"""What the plugin is doing, asked while agents work: the protocol's ``status`` and the
operator's ``plexum-openai-provider-plugin status`` through the control socket."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
from pathlib import Path

from plexum_openai_provider import AgentContext
from plexum_openai_provider.events import ACTIVITY_TYPES
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import FunctionCall, Message, ScriptedModelServer
from tests.conftest import host_config

# Each agent's command runs until the test has seen what it asks about and makes a stop file in the
# agent's workspace (60 s at most).
COMMAND = "for i in $(seq 600); do [ -e stop ] && break; echo tick $i; sleep 0.1; done"


async def test_status_shows_three_busy_agents_to_the_host_and_the_operator(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer, engine: str
) -> None:
    sockets = tmp_path / "sock"
    env = {**codex_env, "PLEXUM_SOCKET_DIR": str(sockets)}
    agents = ["ada", "bob", "cy"]
    for n, _ in enumerate(agents):
        model_server.enqueue(FunctionCall("exec_command", json.dumps({"cmd": COMMAND}), f"c{n}"))
    model_server.enqueue(*(Message("done") for _ in agents))
    async with await PluginClient.spawn(env=env) as plugin:
        # Three at once: the account's default admits 2.
        await plugin.initialize(host_config(max_concurrent_turns=3), events=sorted(ACTIVITY_TYPES))
        turns = []
        for name in agents:
            ws = tmp_path / name
            ws.mkdir()
            turns.append(plugin.start_turn(f"t-{name}", AgentContext(name, ws), "count"))
        readers = [asyncio.ensure_future(_drain(t)) for t in turns]

        for _ in range(600):
            status = await plugin.connection.request("status", {})
            doing = [a["turn"]["activity"] for a in status["agents"] if a["turn"]]
            if len(doing) == 3 and all(d == f"$ {COMMAND}" for d in doing):
                break
            await asyncio.sleep(0.1)
        status = await plugin.connection.request("status", {})
        assert [a["agent"] for a in status["agents"]] == agents
        for agent in status["agents"]:
            assert agent["turn"]["turn_id"] == f"t-{agent['agent']}"
            assert agent["turn"]["running_s"] >= 0 and agent["queued"] == []
        process = status["engine"]["process"]
        if engine == "app-server":
            assert process["pid"] > 0 and process["rss_bytes"] > 10 * 2**20
            assert process["uptime_s"] >= 0
        else:
            assert process is None
        [account] = status["admission"]["accounts"]
        assert (account["account"], account["running"], account["waiting"]) == ("default", 3, 0)
        assert [a["account"] for a in status["agents"]] == ["default"] * 3
        assert account["engine"]["name"] == engine
        # Its own engine (the first account's is also the top-level one).
        assert (account["engine"]["process"] or {}).get("pid") == (process or {}).get("pid")
        # The operator, from a shell: the same, through the control socket (0600 in a 0700 folder).
        [control] = list(sockets.glob("control-*.sock"))
        assert stat.S_IMODE(control.stat().st_mode) == 0o600
        assert stat.S_IMODE(sockets.stat().st_mode) == 0o700
        table = await _cli(env, "status")
        assert table.returncode == 0, table.stderr
        for name in agents:
            assert f"  {name} " in table.stdout and f"t-{name}" in table.stdout
        assert f"plugin pid {plugin.process.pid}" in table.stdout
        as_json = await _cli(env, "status", "--json")
        [answer] = json.loads(as_json.stdout)
        assert [a["agent"] for a in answer["status"]["agents"]] == agents
        print(table.stdout)  # the closing note's figure
        # Limited to one account: the same here, where there is one; an unknown one is refused.
        one = await _cli(env, "status", "--account", "default")
        assert one.returncode == 0 and "account default:" in one.stdout
        assert all(f"  {name} " in one.stdout for name in agents)
        unknown = await _cli(env, "status", "--account", "seat-9")
        assert unknown.returncode == 2 and unknown.stdout == ""
        assert "no running plugin has account 'seat-9' (default)" in unknown.stderr
        for name in agents:
            (tmp_path / name / "stop").touch()
        for reader in readers:
            await reader
        for turn in turns:
            assert (await turn.result()).status == "completed"
        idle = await plugin.connection.request("status", {})
        assert idle["agents"] == []
    assert not list(sockets.glob("control-*.sock"))  # gone with the plugin


async def _drain(turn: object) -> None:
    async for _ in turn:  # type: ignore[attr-defined]
        pass


async def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "plexum_openai_provider", *args]
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )
