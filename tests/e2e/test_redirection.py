"""What the plugin reads or writes in a workspace on the agent's behalf cannot be redirected, with
the real codex on both engines: an image the host names in the agent's workspace reaches the model
as the bytes the plugin read when the request came, whatever the agent makes of the path later;
the plugin's records of a workspace are out of the agent's reach (what it writes where they once
were changes nothing), and a workspace with records of the older layout keeps its thread."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext
from plexum_openai_provider._turn.records import LEGACY_FILES, records_dir
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import FunctionCall, Message, ScriptedModelServer
from tests.conftest import host_config, records_of
from tests.helpers import wait_until

OWN_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="
)
VICTIM_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
# The agent's command: until the plugin has the host's steer (the test then makes the file
# "steered"), rename a forged delivery record over any temporary of the plugin's it sees in its
# workspace; then make img.png a link to the victim's photo.
RACE = r"""
import os, sys, time
open("started", "w").close()
forged, end = 0, time.monotonic() + 60
while time.monotonic() < end and not os.path.exists("steered"):
    for name in os.listdir("."):
        if "plexum-codex-delivered" in name and name.endswith(".tmp"):
            with open("forged", "w") as f:
                f.write('{"thread_id": "x", "boundary": null, "delivered": [], "open": false, "instructions": null}')
            try:
                os.rename("forged", name)
                forged += 1
            except OSError:
                pass
    time.sleep(0.002)
os.symlink(sys.argv[1], "link.png")
os.replace("link.png", "img.png")
print("RACE forged", forged, "swapped", os.path.islink("img.png"))
"""


async def wait_until_queued(plugin: PluginClient, turn_id: str) -> None:
    """Until the plugin's status shows ``turn_id`` waiting as an agent's next turn."""
    for _ in range(600):
        status = await plugin.connection.request("status", {})
        if any(turn_id in agent["queued"] for agent in status["agents"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{turn_id} was never queued")


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def images_sent(server: ScriptedModelServer) -> list[bytes]:
    """The bytes of every image in every model request."""
    out = []
    for request in server.requests:
        for item in request.input:
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "input_image":
                    out.append(base64.b64decode(part["image_url"].split(",", 1)[1]))
    return out


def outputs(server: ScriptedModelServer) -> str:
    return json.dumps([r.items_of_type("function_call_output") for r in server.requests])


async def test_a_steered_image_is_the_one_read_when_it_came_not_what_the_agent_made_of_it(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer, engine: str
) -> None:
    """The attack: while the agent's own command runs, the host steers a message with the image
    ``<workspace>/img.png``; the command then makes img.png a link to another agent's photo.
    app-server takes the steer into the running turn, exec runs it as the next turn: either way
    the model gets the agent's own image (the bytes read when the steer came)."""
    victim, attacker = tmp_path / "victim", tmp_path / "attacker"
    victim.mkdir()
    attacker.mkdir()
    (victim / "photo.png").write_bytes(VICTIM_PNG)
    (attacker / "img.png").write_bytes(OWN_PNG)
    (attacker / "race.py").write_text(textwrap.dedent(RACE))
    command = json.dumps({"cmd": f"python3 race.py {victim / 'photo.png'}"})
    model_server.enqueue(FunctionCall("exec_command", command, call_id="race"), Message("done"))
    agent = AgentContext("attacker", attacker)
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        first = plugin.start_turn("t-1", agent, messages=[user("go")])
        await wait_until(lambda: (attacker / "started").exists())
        look = [
            {"type": "text", "text": "look"},
            {"type": "image", "path": str(attacker / "img.png")},
        ]
        steer = plugin.start_turn(
            "t-2", agent, messages=[user("go"), user(look)], when_busy="steer"
        )
        if engine == "app-server":  # the running turn took it
            assert (await steer.result()).status == "steered"
        else:  # it waits as the next turn (its image read when it came)
            await wait_until_queued(plugin, "t-2")
        (attacker / "steered").touch()  # the command may make its link now
        assert (await first.result()).status == "completed"
        assert (await steer.result()).status == (
            "steered" if engine == "app-server" else "completed"
        )
    assert "RACE forged 0 swapped True" in outputs(model_server)  # the link was made, in time
    assert images_sent(model_server) == [OWN_PNG]


@pytest.mark.one_engine
@pytest.mark.parametrize("where", ["file", "folder"])
async def test_an_image_through_a_link_is_refused_naming_the_part(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer, where: str
) -> None:
    victim, attacker = tmp_path / "victim", tmp_path / "attacker"
    victim.mkdir()
    attacker.mkdir()
    (victim / "photo.png").write_bytes(VICTIM_PNG)
    if where == "file":
        (attacker / "img.png").symlink_to(victim / "photo.png")
        path = attacker / "img.png"
    else:
        (attacker / "pics").symlink_to(victim)
        path = attacker / "pics" / "photo.png"
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        look = [{"type": "text", "text": "look"}, {"type": "image", "path": str(path)}]
        turn = plugin.start_turn("t-1", AgentContext("attacker", attacker), messages=[user(look)])
        with pytest.raises(Exception) as refused:
            await turn.result()
    error: Any = refused.value
    assert (error.code, error.data) == (-32602, {"field": "messages[0].content[1]"})
    assert "symbolic link" in error.message
    assert model_server.requests == []


@pytest.mark.parametrize("sandbox", ["workspace", "none"])
async def test_what_an_agent_writes_where_the_records_were_changes_nothing(
    codex_env: dict[str, str],
    tmp_path: Path,
    model_server: ScriptedModelServer,
    sandbox: str,
) -> None:
    """The agent writes another agent's thread id, a forged delivery record and another owner
    where the plugin kept its records: confined or not (``none``: the agent can write anything in
    its workspace, and does), its next turn resumes its own thread and hears what it had not."""
    victim, attacker = tmp_path / "victim", tmp_path / "attacker"
    victim.mkdir()
    attacker.mkdir()
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config(sandbox=sandbox))
        await plugin.start_turn("t-v", AgentContext("victim", victim), "VICTIM-TALK").result()
        stolen = (records_of(codex_env, victim) / "thread").read_text().strip()
        forged = {"thread_id": stolen, "boundary": None, "delivered": [], "open": False}
        script = (
            f"printf '{stolen}\\n' > .plexum-codex-session"
            f" && printf '%s' '{json.dumps({**forged, 'instructions': None})}' > d.tmp"
            " && mv d.tmp .plexum-codex-delivered && printf 'victim\\n' > .plexum-codex-agent"
            " && echo WRITTEN"
        )
        model_server.enqueue(
            FunctionCall("exec_command", json.dumps({"cmd": script}), call_id="w"),
            Message("done"),
        )
        agent = AgentContext("attacker", attacker)
        first = await plugin.start_turn("t-1", agent, messages=[user("go")]).result()
        assert "WRITTEN" in outputs(model_server)
        assert (attacker / ".plexum-codex-session").read_text().strip() == stolen
        conversation = [user("go"), {"role": "assistant", "content": "done"}, user("NEXT")]
        second = await plugin.start_turn("t-2", agent, messages=conversation).result()
    assert second.status == "completed" and second.thread_id == first.thread_id != stolen
    last = model_server.requests[-1].user_texts()
    assert last[-1] == "NEXT" and sum(t == "go" for t in last) == 1  # its own thread, nothing twice
    assert not any("VICTIM-TALK" in t for t in last)


async def test_a_workspace_with_records_of_the_older_layout_keeps_its_thread(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    agent = AgentContext("cx", workspace)
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        first = await plugin.start_turn("t-1", agent, messages=[user("HELLO")]).result()
    # The records as the older layout kept them: in the workspace, and nothing in the state folder.
    records = records_dir(Path(codex_env["PLEXUM_STATE_DIR"]), workspace)
    for old, new in LEGACY_FILES.items():
        shutil.copy(records / new, workspace / old)
    shutil.rmtree(records)
    conversation = [user("HELLO"), {"role": "assistant", "content": "echo: HELLO"}, user("AGAIN")]
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        second = await plugin.start_turn("t-2", agent, messages=conversation).result()
    assert second.status == "completed" and second.thread_id == first.thread_id
    last = model_server.requests[-1].user_texts()
    assert last[-1] == "AGAIN" and sum(t == "HELLO" for t in last) == 1  # resumed, nothing twice
    assert not set(LEGACY_FILES) & {p.name for p in workspace.iterdir()}  # moved, not copied
    assert (records / "thread").read_text().strip() == first.thread_id
