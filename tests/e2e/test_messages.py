"""What the agent hears, judged by what the scripted model received, on both engines: the host's
instructions, every message the agent missed with its speaker and none twice, images, and the
conversation so far for a new thread."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext
from plexum_openai_provider._turn.messages import CONTINUE
from plexum_openai_provider._turn.thread_store import SESSION_FILE
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import Hang, HttpError, ResponsesRequest, ScriptedModelServer
from tests.conftest import host_config, records_of
from tests.helpers import wait_until
from tests.raw_plugin import RawPlugin, turn_params

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="
)


def user(text: str, name: str | None = None) -> dict[str, Any]:
    return {"role": "user", "content": text, **({"name": name} if name else {})}


def answer(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def messages_of(request: ResponsesRequest, role: str) -> list[str]:
    """The text of each message of ``role`` the model was sent, in order."""
    out = []
    for item in request.input:
        if item.get("type") == "message" and item.get("role") == role:
            out.append(
                "\n".join(
                    str(p.get("text", "")) for p in item.get("content") or [] if isinstance(p, dict)
                )
            )
    return out


async def run(plugin: PluginClient, turn_id: str, agent: AgentContext, *messages: Any) -> Any:
    turn = plugin.start_turn(turn_id, agent, messages=list(messages))
    events = [e async for e in turn]
    return events, await turn.result()


async def test_instructions_reach_the_model_as_instructions_and_a_change_follows(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    agent = AgentContext("cx", workspace)
    persona = {"role": "system", "content": "You are Ada, the helper of #ops. PERSONA-1"}
    changed = {"role": "system", "content": "You are Ada, now of #dev. PERSONA-2"}
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        await run(plugin, "t-1", agent, persona, user("hi"))
        await run(plugin, "t-2", agent, persona, user("hi"), answer("echo: hi"), user("again"))
        await run(
            plugin,
            "t-3",
            agent,
            changed,
            user("hi"),
            answer("echo: hi"),
            user("again"),
            answer("echo: again"),
            user("now"),
        )
    first, second, third = model_server.requests
    assert any("PERSONA-1" in t for t in messages_of(first, "developer"))
    assert not any("PERSONA" in t for t in messages_of(first, "user"))
    assert sum("PERSONA-1" in t for t in messages_of(second, "developer")) == 1  # not again
    developer = messages_of(third, "developer")
    # After the earlier instructions (they stay in codex's history), before the new message.
    assert [i for i, t in enumerate(developer) if "PERSONA" in t] == [
        next(i for i, t in enumerate(developer) if "PERSONA-1" in t),
        next(i for i, t in enumerate(developer) if "PERSONA-2" in t),
    ]
    roles = [(i.get("role"), json.dumps(i.get("content"))) for i in third.input]
    at = next(
        n for n, (role, text) in enumerate(roles) if "PERSONA-2" in text and role == "developer"
    )
    assert [r for r, _ in roles[at + 1 :] if r == "user"] and "now" in messages_of(third, "user")[
        -1
    ]
    assert not any("PERSONA" in t for t in messages_of(third, "user"))


async def test_every_missed_message_reaches_the_model_in_order_with_its_speaker_and_none_twice(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    agent = AgentContext("cx", workspace)
    burst = [
        user("FIRST"),
        answer("echo: FIRST"),
        user("ALICE-MSG", "alice"),
        user("BOB-MSG", "bob"),
    ]
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        await run(plugin, "t-1", agent, user("FIRST"))
        # The model fails once codex took the input: the host sends the same conversation again.
        model_server.enqueue(HttpError(500))
        _, failed = await run(plugin, "t-2", agent, *burst)
        assert failed.status == "failed"
        _, retried = await run(plugin, "t-3", agent, *burst)
        assert retried.status == "completed"
        # A cancelled turn, then the same conversation again.
        later = [*burst, answer("echo: retried"), user("CAROL-MSG", "carol")]
        model_server.enqueue(Hang())
        turn = plugin.start_turn("t-4", agent, messages=later)
        await wait_until(lambda: len(model_server.requests) == 4)
        await plugin.cancel("t-4")
        assert (await turn.result()).status == "cancelled"
        _, after = await run(plugin, "t-5", agent, *later)
        assert after.status == "completed"
    sent = [r.user_texts() for r in model_server.requests]
    assert sent[1][-1] == "alice: ALICE-MSG\n\nbob: BOB-MSG"  # both, in order, with speakers
    assert sent[2][-1] == CONTINUE
    assert sum("ALICE-MSG" in t for t in sent[2]) == 1  # codex has it once
    assert sent[3][-1] == "carol: CAROL-MSG"
    assert sent[4][-1] == CONTINUE and sum("CAROL-MSG" in t for t in sent[4]) == 1


@pytest.mark.catalog("scripted", "code-mode")
async def test_images_reach_the_model_as_images(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    picture = workspace / "diagram.png"
    picture.write_bytes(PNG)
    data = "data:image/png;base64," + base64.b64encode(PNG).decode()
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        turn = plugin.start_turn(
            "t-1", AgentContext("cx", workspace), "what do you see?", images=[str(picture), data]
        )
        assert (await turn.result()).status == "completed"
    [last] = [i for i in model_server.requests[0].input if i.get("role") == "user"][-1:]
    kinds = [p.get("type") for p in last["content"]]
    assert kinds.count("input_image") == 2 and "input_text" in kinds
    images = [p["image_url"] for p in last["content"] if p.get("type") == "input_image"]
    assert all(url.startswith("data:image/png;base64,") for url in images)
    # The workspace file as the plugin read it, and the data: URL: the agent's own images, intact.
    assert [base64.b64decode(url.split(",", 1)[1]) for url in images] == [PNG, PNG]


@pytest.mark.one_engine
async def test_bad_messages_are_refused_naming_the_part_before_the_model(
    codex_env: dict[str, str], workspace: Path, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    text = workspace / "notes.png"
    text.write_text("not an image")
    outside = tmp_path / "outside.png"
    outside.write_bytes(PNG)
    cases = [
        ({"type": "image", "path": "diagram.png"}, "messages[0].content[1]", "absolute"),
        (
            {"type": "image", "path": str(workspace / "gone.png")},
            "messages[0].content[1]",
            "cannot be read",
        ),
        ({"type": "image", "path": str(text)}, "messages[0].content[1]", "not an image"),
        ({"type": "audio", "data": "AAAA"}, "messages[0].content[1].type", "not known"),
        # Confined: an image outside the agent's workspace (and what it may read).
        ({"type": "image", "path": str(outside)}, "messages[0].content[1]", "outside the agent"),
    ]
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    for n, (part, field, why) in enumerate(cases):
        params = turn_params(f"t-{n}", "cx", workspace, "x")
        params["messages"] = [{"role": "user", "content": [{"type": "text", "text": "look"}, part]}]
        refused = await plugin.request(n, "turn/start", params)
        assert refused["error"]["code"] == -32602, refused
        assert refused["error"]["data"]["field"] == field and why in refused["error"]["message"]
    unknown_role = turn_params("t-r", "cx", workspace, "x")
    unknown_role["messages"] = [{"role": "tool", "content": "x"}]
    refused = await plugin.request("r", "turn/start", unknown_role)
    assert refused["error"]["data"]["field"] == "messages[0].role"
    assert model_server.requests == []
    assert await plugin.close() == 0


@pytest.mark.catalog("scripted", "code-mode")
async def test_a_new_thread_is_given_the_conversation_so_far(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    agent = AgentContext("cx", workspace)
    conversation = [
        user("the door code is 4711", "alice"),
        answer("Noted."),
        user("what is the door code?", "bob"),
    ]
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        events, _ = await run(plugin, "t-1", agent, *conversation)
        replayed = [e for e in events if e.type == "notice" and e.code == "history_replayed"]
        assert len(replayed) == 1 and "2 earlier messages" in replayed[0].message
        more = [*conversation, answer("4711"), user("thanks", "bob")]
        events, _ = await run(plugin, "t-2", agent, *more)
        assert not [e for e in events if e.type == "notice" and e.code == "history_replayed"]
        # codex lost the thread (its record now names one codex does not know): a new thread, with
        # the conversation so far, again.
        (records_of(codex_env, workspace) / SESSION_FILE).write_text(
            "01a20000-0000-7000-8000-000000000000\n"
        )
        evenmore = [*more, answer("you are welcome"), user("bye", "bob")]
        events, _ = await run(plugin, "t-3", agent, *evenmore)
        codes = [e.code for e in events if e.type == "notice"]
        assert "resume_failed" in codes and "history_replayed" in codes
    first, second = model_server.requests[0], model_server.requests[1]
    assert "the door code is 4711" in first.raw  # as history on app-server, a recap on exec
    assert first.user_texts()[-1].endswith("bob: what is the door code?")
    assert second.user_texts()[-1] == "bob: thanks"
    assert sum("the door code is 4711" in t for t in second.user_texts()) == 1  # not again
    third = model_server.requests[-1]
    assert "you are welcome" in third.raw and third.user_texts()[-1].endswith("bob: bye")


async def test_the_workspace_project_instructions_reach_a_confined_agent(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    # codex's own AGENTS.md discovery, confined: the plugin tells codex not to look only where
    # there is nothing to find (a confined look costs a sandboxed helper per read).
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "AGENTS.md").write_text("ROOT-DOC-MARK\n")
    nested = repo / "agents" / "cx"
    nested.mkdir(parents=True)
    (nested / "AGENTS.md").write_text("AGENT-DOC-MARK\n")
    bare = tmp_path / "bare"
    bare.mkdir()
    async with await PluginClient.spawn(env=codex_env) as plugin:
        info = await plugin.initialize(host_config())
        assert info["sandbox"]["mode"] == "workspace"
        await run(plugin, "t-1", AgentContext("cx", nested), user("hi"))
        await run(plugin, "t-2", AgentContext("other", bare), user("hi"))
    with_docs, without = model_server.requests
    assert "AGENT-DOC-MARK" in with_docs.raw
    assert "ROOT-DOC-MARK" not in with_docs.raw  # outside the workspace: not the agent's to read
    assert "DOC-MARK" not in without.raw
