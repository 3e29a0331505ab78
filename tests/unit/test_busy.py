"""Talking to a busy agent, on the fake codex seam: refuse, steer into the running turn, queue;
order, cancel and shutdown with a queue; every request answered, no message lost or given twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentBusyError, AgentContext
from plexum_openai_provider.conversation import parse_messages
from plexum_openai_provider.errors import InvalidRequestError
from plexum_openai_provider.requests import TurnRequest
from plexum_openai_provider.testing import FakeEngine, FakeRun, exec_lines
from tests.helpers import provider_on, wait_until

THREAD = "01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1"
pytestmark = pytest.mark.timeout(10)
RUNNING = [exec_lines.thread_started(THREAD), exec_lines.turn_started()]


def answered(text: str) -> FakeRun:
    return FakeRun(exec_lines.turn(THREAD, text))


class Rig:
    def __init__(self, tmp_path: Path, runs: list[FakeRun]) -> None:
        (tmp_path / "ws").mkdir()
        self.agent = AgentContext("cx", tmp_path / "ws")
        self.engine = FakeEngine(list(runs))
        self.provider = provider_on(self.engine, tmp_path)

    async def start(self, turn_id: str, *texts: str, when_busy: Any = "refuse") -> Any:
        messages = parse_messages([{"role": "user", "content": t} for t in texts])
        request = TurnRequest(self.agent, turn_id=turn_id, messages=messages)
        return await self.provider.start_turn(request, when_busy)

    async def running(self) -> Any:
        """The hanging first turn, once codex took its input."""
        turn = await self.start("t-1", "one")
        await wait_until(lambda: turn.record is not None)
        return turn


async def test_refused_by_default_and_an_unknown_choice_is_refused(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [FakeRun(RUNNING, hang=True)])
    first = await rig.running()
    with pytest.raises(AgentBusyError):
        await rig.start("t-2", "one", "two")
    with pytest.raises(InvalidRequestError) as err:
        await rig.start("t-3", "one", "two", when_busy="later")
    assert err.value.field == "when_busy"
    first.cancel()
    await first.result()


async def test_queued_messages_run_after_in_order_each_answered_with_only_what_is_new(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, [FakeRun(RUNNING, hang=True), answered("a2"), answered("a3")])
    first = await rig.running()
    second = await rig.start("t-2", "one", "two", when_busy="queue")
    third = await rig.start("t-3", "one", "two", "three", when_busy="queue")
    first.cancel()  # a cancel of the running turn does not drop the queue
    assert (await first.result()).status == "cancelled"
    results = [await second.result(), await third.result()]
    assert [(r.turn_id, r.status) for r in results] == [("t-2", "completed"), ("t-3", "completed")]
    assert [spec.prompt for spec in rig.engine.specs] == ["one", "two", "three"]
    events = [e async for e in second]
    assert [e.type for e in events if e.type == "text_delta"] == ["text_delta"]


async def test_a_steer_joins_the_running_turn(tmp_path: Path) -> None:
    steerable = FakeRun(RUNNING, hang=True, on_steer=[exec_lines.agent_message("both answered")])
    rig = Rig(tmp_path, [steerable, answered("later")])
    first = await rig.running()
    steered = await rig.start("t-2", "one", "two", when_busy="steer")
    result = await steered.result()
    assert (result.status, result.into, result.turn_id) == ("steered", "t-1", "t-2")
    assert rig.engine.steered == ["two"]
    assert [e async for e in steered] == []  # its answer comes in the running turn's events
    assert first.record is not None and len(first.record.delivered) == 2 and first.record.open
    first.cancel()
    await first.result()
    # The next request (the host now has the answer): only what came after.
    later = await rig.start("t-3", "one", "two", "three")
    await later.result()
    assert rig.engine.specs[-1].prompt == "three"


async def test_a_steer_codex_cannot_take_is_queued(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [FakeRun(RUNNING, hang=True), answered("a2")])  # no on_steer: as exec
    first = await rig.running()
    steered = await rig.start("t-2", "one", "two", when_busy="steer")
    assert rig.engine.steered == []
    first.cancel()
    result = await steered.result()
    assert (result.turn_id, result.status) == ("t-2", "completed")
    assert rig.engine.specs[-1].prompt == "two"


async def test_cancel_of_a_queued_turn_and_shutdown_answer_every_request(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [FakeRun(RUNNING, hang=True)])
    first = await rig.running()
    dropped = await rig.start("t-2", "one", "two", when_busy="queue")
    kept = await rig.start("t-3", "one", "three", when_busy="queue")
    dropped.cancel("cancelled by the host")
    assert (await dropped.result()).status == "cancelled"
    assert [e.type async for e in dropped] == ["error"]
    await asyncio.wait_for(rig.provider.close(), 5)
    assert (await first.result()).status == "cancelled"
    waiting = await kept.result()
    assert waiting.status == "cancelled" and waiting.error is not None
    assert "shutting down" in waiting.error.message
    assert len(rig.engine.specs) == 1  # neither queued request ran


async def test_a_consume_waits_for_the_running_turn_not_for_the_queue(tmp_path: Path) -> None:
    # The queued messages are new to codex: nothing a consume rewrites is theirs. It runs when
    # the running turn ends, and the queued turn after it.
    rig = Rig(tmp_path, [FakeRun(RUNNING, hang=True), FakeRun(RUNNING, hang=True)])
    first = await rig.running()
    queued = await rig.start("t-2", "one", "two", when_busy="queue")
    consume = asyncio.create_task(rig.provider.consume(rig.agent, ["call_1"]))
    await asyncio.sleep(0.1)
    assert not consume.done()  # the running turn holds the agent
    first.cancel()
    result = await asyncio.wait_for(consume, 5)
    assert (result.consumed, result.not_found) == ([], ["call_1"])
    await wait_until(lambda: len(rig.engine.specs) == 2)  # then the queued turn runs
    assert rig.engine.specs[-1].prompt == "two"
    queued.cancel()
    assert (await queued.result()).status == "cancelled"
