"""Talking to a busy agent, with the real codex: a steer lands in the running turn's next model
request (app-server) or waits as the next turn (exec); queued messages run after, in order; a
steer that races the turn's end still reaches the model; cancel and shutdown with a queue."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import Hang, Message, ScriptedModelServer, Wait
from tests.conftest import host_config
from tests.helpers import wait_until
from tests.raw_plugin import RawPlugin, turn_params


def user(text: str, name: str | None = None) -> dict[str, Any]:
    return {"role": "user", "content": text, **({"name": name} if name else {})}


def carrying(server: ScriptedModelServer, text: str) -> list[int]:
    """The indexes of the model requests whose newest user message holds ``text``."""
    return [i for i, r in enumerate(server.requests) if text in (r.user_texts() or [""])[-1]]


@pytest.mark.catalog("scripted", "code-mode")
async def test_a_steer_joins_the_running_turn_or_waits_as_the_next(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, engine: str
) -> None:
    agent = AgentContext("cx", workspace)
    release = threading.Event()
    model_server.enqueue(Wait(release, Message("first answer")), Message("the steered answer"))
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        first = plugin.start_turn("t-1", agent, messages=[user("FIRST", "alice")])
        await wait_until(lambda: len(model_server.requests) == 1)
        asked = time.monotonic()
        steer = plugin.start_turn(
            "t-2",
            agent,
            messages=[user("FIRST", "alice"), user("STEERED", "bob")],
            when_busy="steer",
        )
        if engine == "app-server":
            steered = await asyncio.wait_for(steer.result(), 10)
            assert (steered.status, steered.into) == ("steered", "t-1")
        release.set()
        texts = "".join([e.text async for e in first if e.type == "text_delta"])
        result = await first.result()
        assert result.status == "completed"
        await wait_until(lambda: carrying(model_server, "bob: STEERED") != [])
        took = time.monotonic() - asked
        if engine == "app-server":
            # codex sent a second model request within the same turn, the steered message last.
            assert len(model_server.requests) == 2 and carrying(model_server, "bob: STEERED") == [1]
            assert "the steered answer" in texts
        else:
            waited = await steer.result()  # codex exec takes no input mid-turn: the next turn
            assert (waited.turn_id, waited.status) == ("t-2", "completed")
            assert carrying(model_server, "bob: STEERED") == [1]
        print(f"{engine}: steer → the model request carrying it: {took:.2f} s")
        assert sum("STEERED" in t for t in model_server.requests[-1].user_texts()) == 1


async def test_queued_messages_run_after_in_order(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    agent = AgentContext("cx", workspace)
    release = threading.Event()
    model_server.enqueue(Wait(release, Message("one")))
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        first = plugin.start_turn("t-1", agent, messages=[user("A")])
        await wait_until(lambda: len(model_server.requests) == 1)
        queued = [
            plugin.start_turn("t-2", agent, messages=[user("A"), user("B")], when_busy="queue"),
            plugin.start_turn(
                "t-3", agent, messages=[user("A"), user("B"), user("C")], when_busy="queue"
            ),
        ]
        await asyncio.sleep(0)  # (both requests are sent before the release)
        release.set()
        results = [await first.result()] + [await q.result() for q in queued]
    assert [(r.turn_id, r.status) for r in results] == [
        ("t-1", "completed"),
        ("t-2", "completed"),
        ("t-3", "completed"),
    ]
    assert [r.user_texts()[-1] for r in model_server.requests] == ["A", "B", "C"]
    assert all(sum(t == "B" for t in r.user_texts()) <= 1 for r in model_server.requests)


async def test_a_steer_that_races_the_end_of_the_turn_still_reaches_the_model(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    agent = AgentContext("cx", workspace)
    release = threading.Event()
    model_server.enqueue(Wait(release, Message("done")))
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        first = plugin.start_turn("t-1", agent, messages=[user("A")])
        await wait_until(lambda: len(model_server.requests) == 1)
        release.set()  # codex is ending the turn as the steer arrives
        steer = plugin.start_turn(
            "t-2", agent, messages=[user("A"), user("LATE")], when_busy="steer"
        )
        outcome = await steer.result()
        assert (await first.result()).status == "completed"
        assert outcome.status in ("steered", "completed")
        await wait_until(lambda: carrying(model_server, "LATE") != [])
    assert sum("LATE" in t for r in model_server.requests for t in r.user_texts()[-1:]) == 1


async def test_cancel_and_shutdown_with_a_queue(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    model_server.enqueue(Hang(), Hang())
    await plugin.submit("r1", "turn/start", turn_params("t-1", "cx", workspace, "A"))
    await wait_until(lambda: len(model_server.requests) == 1)
    waiting = {}
    for n, text in ((2, "B"), (3, "C"), (4, "D")):
        params = turn_params(f"t-{n}", "cx", workspace, text, when_busy="queue")
        params["messages"] = [{"role": "user", "content": t} for t in "ABCD"[:n]]
        await plugin.submit(f"r{n}", "turn/start", params)
        waiting[n] = params
    cancel = await plugin.request("c2", "turn/cancel", {"turn_id": "t-2"})  # a queued one
    assert cancel["result"] == {}
    assert (await plugin.answer("r2"))["result"]["status"] == "cancelled"
    await plugin.request("c1", "turn/cancel", {"turn_id": "t-1"})  # the running one
    assert (await plugin.answer("r1"))["result"]["status"] == "cancelled"
    await wait_until(lambda: len(model_server.requests) == 2)  # t-3 runs (it hangs)
    assert model_server.requests[1].user_texts()[-1] == "B\n\nC"  # B was never given
    plugin.process.stdin.close()  # type: ignore[union-attr]  # shutdown with t-4 waiting
    answers = {}
    for _ in range(2):
        message = await plugin.answer_any()
        answers[message["id"]] = message["result"]["status"]
    assert answers == {"r3": "cancelled", "r4": "cancelled"}
    assert await plugin.process.wait() == 0
    assert len(model_server.requests) == 2  # t-4 never ran


@pytest.mark.one_engine
async def test_an_unknown_when_busy_is_refused(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    refused = await plugin.request(
        1, "turn/start", turn_params("t-1", "cx", workspace, "hi", when_busy="later")
    )
    assert refused["error"]["code"] == -32602
    assert refused["error"]["data"]["field"] == "when_busy"
    assert model_server.requests == []
    assert await plugin.close() == 0
