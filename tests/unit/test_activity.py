"""What the agent is doing, as the host sees it: codex's activity on recorded lines of both
engines (0.163), mapped to events; the mapping's bounds and pairing; the wire form."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest

from plexum_openai_provider import AgentContext, HostConfig, InvalidRequestError, TurnRequest
from plexum_openai_provider._engine import seam
from plexum_openai_provider._engine.app_server_events import AppServerTurn, diff_counts
from plexum_openai_provider._turn.mapping import OUTPUT_BOUND, OUTPUT_CUT, AttemptMapper
from plexum_openai_provider.events import (
    ACTIVITY_TYPES,
    BASE_TYPES,
    ContextWindow,
    FileChange,
    FileChanged,
    Plan,
    PlanStep,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolOutputDelta,
    ToolResult,
    ToolStarted,
    Usage,
    event_from_dict,
    event_to_dict,
)
from plexum_openai_provider.testing import FakeEngine, FakeRun
from tests.helpers import provider_on

DATA = Path(__file__).parent.parent / "data"
pytestmark = pytest.mark.timeout(10)

PLAN = Plan((PlanStep("count", "in_progress"), PlanStep("report", "pending")), "two steps")
CHANGES = (
    FileChange("/ws-root/ws/notes.txt", "add", 2, 0),
    FileChange("/ws-root/ws/seed.txt", "update", 1, 1),
)


def app_server_lines() -> list[dict[str, object]]:
    return [json.loads(line) for line in (DATA / "app-server-0.163-activity.jsonl").open()]


def test_app_server_activity_maps_to_seam_events() -> None:
    lines = app_server_lines()
    started = next(m for m in lines if m["method"] == "turn/started")
    params = started["params"]
    assert isinstance(params, dict)
    turn = AppServerTurn(params["threadId"], params["turn"]["id"])
    events = [e for m in lines for e in turn.feed(str(m["method"]), m["params"])]
    meaningful = [
        e for e in events if not isinstance(e, (seam.Other, seam.CodexWarning, seam.ContextUsage))
    ]
    outputs = [e for e in meaningful if isinstance(e, seam.OutputDelta)]
    assert [e.item_id for e in outputs] == ["call_cmd"] * len(outputs) and len(outputs) >= 4
    assert "".join(e.text for e in outputs).splitlines()[-1].startswith("line 5 at ")
    rest = [e for e in meaningful if not isinstance(e, seam.OutputDelta)]
    assert rest[:6] == [
        seam.Reasoning("rs_2/0", "Counting lines first."),
        seam.PlanUpdated(PLAN.steps, "two steps"),
        seam.ItemStarted("call_cmd", "commandExecution", "call_cmd"),
        seam.ItemDone("call_cmd", "commandExecution"),
        seam.ItemStarted("call_patch", "fileChange", "call_patch"),
        seam.FilesChanged("call_patch", CHANGES, "call_patch"),
    ]
    done = rest[-1]
    assert (
        isinstance(done, seam.TurnDone) and done.duration_ms is not None and done.duration_ms > 4000
    )
    contexts = [e for e in events if isinstance(e, seam.ContextUsage)]
    assert contexts[-1] == seam.ContextUsage(110, 258400)


def test_diff_counts_follow_codex_diffs() -> None:
    assert diff_counts("add", "one\ntwo\n") == (2, 0)
    assert diff_counts("delete", "a\nb\nc") == (0, 3)
    assert diff_counts(
        "update", "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-old\n+new\n+more\n ctx\n"
    ) == (2, 1)


def test_output_is_bounded_per_call_and_held_until_the_call_started() -> None:
    mapper = AttemptMapper(None)
    # Output of a call the rollout has not shown yet waits for its tool_started.
    assert mapper.feed(seam.OutputDelta("call_a", "early\n")) == []
    started = ToolStarted("call_a", "exec_command", "{}")
    assert mapper.blocks([started]) == [started, ToolOutputDelta("call_a", "early\n")]
    big = "x" * OUTPUT_BOUND
    out = mapper.feed(seam.OutputDelta("call_a", big))
    assert out == [
        ToolOutputDelta("call_a", big[: OUTPUT_BOUND - len("early\n")]),
        ToolOutputDelta("call_a", OUTPUT_CUT),
    ]
    assert mapper.feed(seam.OutputDelta("call_a", "more")) == []  # past the bound: nothing
    # Another call has a bound of its own.
    mapper.blocks([ToolStarted("call_b", "exec_command", "{}")])
    assert mapper.feed(seam.OutputDelta("call_b", "b")) == [ToolOutputDelta("call_b", "b")]


def test_exec_items_are_paired_with_their_calls_by_kind_and_order() -> None:
    mapper = AttemptMapper(None)
    mapper.blocks(
        [
            ToolStarted("call_plan", "update_plan", "{}"),
            ToolStarted("call_cmd", "exec_command", "{}"),
            ToolStarted("call_mcp", "get_weather", "{}", "mcp__plexum_host__"),
            ToolStarted("call_patch", "apply_patch", "*** Begin Patch"),
        ]
    )
    mapper.item_started(seam.ItemStarted("item_4", "command_execution"))
    mapper.item_started(seam.ItemStarted("item_5", "mcp_tool_call"))
    out = mapper.feed(seam.FilesChanged("item_6", CHANGES))
    assert out == [FileChanged("call_patch", CHANGES)]
    assert mapper.block_id("item_4", "command_execution") == "call_cmd"
    assert mapper.block_id("item_5", "mcp_tool_call") == "call_mcp"
    # A plan that did not change is not sent twice (exec prints it at an item's start and end).
    assert mapper.feed(seam.PlanUpdated(PLAN.steps)) == [Plan(PLAN.steps)]
    assert mapper.feed(seam.PlanUpdated(PLAN.steps)) == []


def test_activity_events_round_trip_on_the_wire() -> None:
    for event in (
        ToolStarted("call_1", "exec_command", '{"cmd": "ls"}'),
        ToolOutputDelta("call_1", "a\n"),
        ReasoningDelta("rs_1/0", "thinking"),
        PLAN,
        FileChanged("call_2", CHANGES),
        ContextWindow(110, 258400, 0.0004),
    ):
        wire = json.loads(json.dumps(event_to_dict(event)))
        assert event_from_dict(wire) == event
    assert event_to_dict(PLAN)["steps"][0] == {"step": "count", "status": "in_progress"}


def test_an_unknown_event_type_asked_for_is_refused_naming_the_field() -> None:
    request = TurnRequest(AgentContext("cx", Path("/tmp")), "hi", events=BASE_TYPES | {"nope"})
    with pytest.raises(InvalidRequestError) as caught:
        request.validate()
    assert caught.value.field == "events"
    bad = TurnRequest(AgentContext("cx", Path("/tmp")), "hi", traceparent="00-xyz")
    with pytest.raises(InvalidRequestError) as caught:
        bad.validate()
    assert caught.value.field == "traceparent"


async def test_an_exec_turn_tells_what_the_agent_does_with_the_calls_block_ids(
    tmp_path: Path,
) -> None:
    """The recorded exec session (reasoning, a plan, a command, a patch) on the fake seam, with
    the rollout codex wrote: every call starts with its own call id, exec's item of the patch is
    paired with it, and the context comes from the rollout."""
    home = tmp_path / "codex-home"
    day = dt.datetime.now(dt.UTC).date()
    folder = home / "sessions" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
    folder.mkdir(parents=True)
    lines = (DATA / "exec-0.163-activity.jsonl").read_text().splitlines()
    thread = json.loads(lines[0])["thread_id"]
    rollout = folder / f"rollout-2026-12-03T22-30-11-{thread}.jsonl"
    rollout.write_bytes((DATA / "rollout-0.163-activity.jsonl").read_bytes())
    engine = FakeEngine([FakeRun(lines)])
    provider = provider_on(engine, tmp_path, HostConfig())
    workspace = tmp_path / "ws"
    workspace.mkdir()
    wanted = BASE_TYPES | ACTIVITY_TYPES
    try:
        turn = await provider.start_turn(
            TurnRequest(AgentContext("cx", workspace), "go", events=wanted)
        )
        events = [e async for e in turn]
        result = await turn.result()
        # Today's host, asking for nothing more, sees none of it.
        engine.runs.append(FakeRun(lines))
        plain = await provider.start_turn(TurnRequest(AgentContext("cx", workspace), "again"))
        plain_events = [e async for e in plain]
    finally:
        await provider.close()
    assert result.status == "completed"
    kinds = [e.type for e in events if e.type != "notice"]
    assert kinds[:2] == ["reasoning_delta", "plan"]
    started = [e.block_id for e in events if isinstance(e, ToolStarted)]
    called = [e.block_id for e in events if isinstance(e, ToolCall)]
    assert started == called == ["call_plan", "call_cmd", "call_patch"]
    for block in called:  # each call starts before it is reported done
        first = next(
            i for i, e in enumerate(events) if isinstance(e, ToolStarted) and e.block_id == block
        )
        done = next(
            i for i, e in enumerate(events) if isinstance(e, ToolCall) and e.block_id == block
        )
        assert first < done
    [change] = [e for e in events if isinstance(e, FileChanged)]
    assert change.block_id == "call_patch"
    assert [(c.path, c.kind) for c in change.changes] == [
        ("/ws-root/ws/notes.txt", "add"),
        ("/ws-root/ws/seed.txt", "update"),
    ]
    assert events[-2:] == [ContextWindow(110, 258400, 0.0004), Usage(400, 0, 40, 0)]
    assert result.timing is not None and result.timing.codex_ms is None  # exec gives none
    assert result.timing.first_token_ms is not None
    assert not [e for e in plain_events if e.type in ACTIVITY_TYPES]
    assert any(isinstance(e, (TextDelta, ToolResult)) for e in plain_events)
    await asyncio.sleep(0)
