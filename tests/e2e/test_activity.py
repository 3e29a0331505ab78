"""What the agent is doing reaches the host while it does it: a command's start and its output as
it prints, reasoning, the plan, file changes, the context window and the turn's timing. The real
codex, both engines, through the plugin's protocol."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plexum_openai_provider import AgentContext
from plexum_openai_provider.events import (
    ACTIVITY_TYPES,
    ContextWindow,
    Event,
    FileChanged,
    Plan,
    PlanStep,
    ReasoningDelta,
    ToolCall,
    ToolOutputDelta,
    ToolResult,
    ToolStarted,
)
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import (
    CustomToolCall,
    FunctionCall,
    Message,
    Reasoning,
    ScriptedModelServer,
)
from tests.conftest import host_config
from tests.raw_plugin import RawPlugin

# A command that prints a line every 0.6 s, with the time it printed it.
COMMAND = "for i in 1 2 3; do echo line $i at $(date +%s.%N); sleep 0.6; done"
PATCH = (
    "*** Begin Patch\n*** Add File: notes.txt\n+one\n+two\n"
    "*** Update File: seed.txt\n@@\n-old\n+new\n*** End Patch\n"
)
PLAN = json.dumps(
    {
        "explanation": "two steps",
        "plan": [
            {"step": "count", "status": "in_progress"},
            {"step": "report", "status": "pending"},
        ],
    }
)


async def test_a_working_agent_is_seen_as_it_works(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, engine: str
) -> None:
    (workspace / "seed.txt").write_text("old\n")
    model_server.enqueue(
        [
            Reasoning(("Counting lines first.",)),
            FunctionCall("update_plan", PLAN, call_id="c_plan"),
        ],
        FunctionCall("exec_command", json.dumps({"cmd": COMMAND}), call_id="c_cmd"),
        # gpt-5.5's catalog entry offers apply_patch (a freeform tool); the scripted model stands in.
        CustomToolCall(PATCH, name="apply_patch", call_id="c_patch", namespace=None),
        Message("done"),
    )
    config = host_config(supported_models=["gpt-5.5"], model_args={"gpt-5.5": "gpt-5.5"})
    async with await PluginClient.spawn(env=codex_env) as plugin:
        init = await plugin.initialize(config, events=sorted(ACTIVITY_TYPES))
        assert set(init["events"]) >= ACTIVITY_TYPES
        turn = plugin.start_turn("t-1", AgentContext("cx", workspace), "count")
        timed: list[tuple[float, Event]] = [(time.time(), e) async for e in turn]
        result = await turn.result()
    assert result.status == "completed"
    events = [e for _, e in timed]
    reasoning = [e for e in events if isinstance(e, ReasoningDelta)]
    assert [e.text for e in reasoning] == ["Counting lines first."]
    plans = [e for e in events if isinstance(e, Plan)]
    if engine == "app-server":
        assert plans == [
            Plan((PlanStep("count", "in_progress"), PlanStep("report", "pending")), "two steps")
        ]
    else:  # exec prints a step as done or not, without the explanation
        assert plans == [Plan((PlanStep("count", "pending"), PlanStep("report", "pending")))]
    # Every call starts, with its own block id, before it is reported done.
    started = [e for e in events if isinstance(e, ToolStarted)]
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert (
        [e.block_id for e in started]
        == [e.block_id for e in calls]
        == ["c_plan", "c_cmd", "c_patch"]
    )
    assert [(s.name, s.arguments) for s in started] == [(c.name, c.arguments) for c in calls]
    index = {id(e): i for i, e in enumerate(events)}
    for s, c in zip(started, calls, strict=True):
        assert index[id(s)] < index[id(c)]
    # The command was seen running while it ran (its start reached the host before its output).
    when = {id(e): t for t, e in timed}
    cmd_started = next(when[id(e)] for e in started if e.block_id == "c_cmd")
    cmd_done = next(when[id(e)] for e in calls if e.block_id == "c_cmd")
    assert cmd_done - cmd_started > 1.0
    deltas = [(t, e) for t, e in timed if isinstance(e, ToolOutputDelta)]
    result_text = next(
        e.output for e in events if isinstance(e, ToolResult) and e.block_id == "c_cmd"
    )
    assert "line 3 at" in result_text
    if engine == "app-server":
        assert {e.block_id for _, e in deltas} == {"c_cmd"}
        for at, delta in deltas:
            for line in delta.text.splitlines():
                printed = float(line.rsplit(" ", 1)[1])
                assert 0 <= at - printed < 0.5, (line, at)  # as it printed, not at the end
        assert "line 3 at" in "".join(e.text for _, e in deltas)
    else:  # codex exec prints no output of a running command
        assert deltas == []
    [change] = [e for e in events if isinstance(e, FileChanged)]
    assert change.block_id == "c_patch"
    paths = [(Path(c.path).name, c.kind) for c in change.changes]
    assert paths == [("notes.txt", "add"), ("seed.txt", "update")]
    if engine == "app-server":
        assert [(c.added, c.removed) for c in change.changes] == [(2, 0), (1, 1)]
    assert (workspace / "seed.txt").read_text() == "new\n"
    context = next(e for e in events if isinstance(e, ContextWindow))
    assert context.tokens == 110 and context.window is not None and context.window > 100_000
    assert result.timing is not None and result.timing.total_ms >= result.timing.first_token_ms > 0
    if engine == "app-server":
        assert result.timing.codex_ms is not None and result.timing.codex_ms > 1000


@pytest.mark.one_engine
async def test_a_host_that_asks_for_nothing_gets_todays_events_and_an_unknown_type_is_refused(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    model_server.enqueue(
        FunctionCall("exec_command", json.dumps({"cmd": "echo hi"}), call_id="c1"), Message("ok")
    )
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        turn = plugin.start_turn("t-1", AgentContext("cx", workspace), "go")
        events = [e async for e in turn]
        assert (await turn.result()).status == "completed"
    assert {e.type for e in events} <= {"text_delta", "tool_call", "tool_result", "usage", "notice"}
    raw = await RawPlugin.spawn(codex_env)
    answer = await raw.request(
        1, "initialize", {"protocol_version": 1, "events": ["tool_started", "telepathy"]}
    )
    await raw.close()
    assert answer["error"]["code"] == -32602
    assert answer["error"]["data"] == {"field": "events[1]"}


def test_run_json_prints_the_agent_at_work(tmp_path: Path, engine: str) -> None:
    """``run --json --demo work``: the demo model thinks, plans and runs a command."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(host_config()))
    command = ["run", "--json", "--demo", "--config", str(config), "work"]
    done = subprocess.run(
        [sys.executable, "-m", "plexum_openai_provider", *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = [line["type"] for line in lines]
    assert kinds.index("reasoning_delta") < kinds.index("plan") < kinds.index("tool_started")
    started = [line for line in lines if line["type"] == "tool_started"]
    assert [s["name"] for s in started] == ["update_plan", "exec_command"]
    output = "".join(line["text"] for line in lines if line["type"] == "tool_output_delta")
    if engine == "app-server":
        assert "step 3" in output
    else:
        assert output == ""
    assert kinds[-3:] == ["context", "usage", "result"]
    assert lines[-1]["timing"]["total_ms"] > 1000
