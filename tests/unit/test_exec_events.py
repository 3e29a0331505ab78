"""The exec JSONL parser on lines recorded from the real codex 0.163."""

from __future__ import annotations

from pathlib import Path

from plexum_openai_provider._codex.exec_events import (
    AgentMessage,
    ErrorLine,
    ItemCompleted,
    ItemError,
    ItemStarted,
    Malformed,
    Other,
    Reasoning,
    ThreadStarted,
    TodoList,
    TurnCompleted,
    TurnFailed,
    TurnStarted,
    parse_exec_line,
)
from plexum_openai_provider.events import PlanStep, Usage

DATA = Path(__file__).parent.parent / "data"


def test_recorded_lines() -> None:
    lines = (DATA / "exec-0.163-lines.jsonl").read_bytes().splitlines()
    parsed = [parse_exec_line(line) for line in lines]
    assert parsed[0] == ThreadStarted("01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1")
    assert isinstance(parsed[1], ItemError) and parsed[1].message.startswith("Model metadata")
    assert parsed[2] == TurnStarted()  # codex took the input
    assert parsed[3] == AgentMessage("echo: hello there", "item_1")
    assert parsed[4] == TurnCompleted(Usage(300, 0, 30, 0))
    assert parsed[5] == ErrorLine(
        "We’re currently experiencing high demand, which may cause temporary errors."
    )
    assert parsed[6] == TurnFailed("stream disconnected before completion: boom failed")


def test_items_of_other_kinds_and_versions_are_tolerated() -> None:
    for line in [
        b'{"type":"item.started","item":{"id":"item_6","type":"reasoning","text":""}}',
        b'{"type":"item.started","item":"not an object"}',
        b'{"type":"item.updated","item":{"id":"item_5","type":"command_execution"}}',
        b'{"type":"item.completed","item":"not an object"}',
        b'{"type":"some.future.event","x":1}',
    ]:
        assert isinstance(parse_exec_line(line), Other)
    # A plan's items that are not steps are left out (exec prints `{text, completed}`).
    assert parse_exec_line(
        b'{"type":"item.updated","item":{"id":"item_5","type":"todo_list",'
        b'"items":[{"text":"a","completed":true},{"x":1},"no"]}}'
    ) == TodoList((PlanStep("a", "completed"),))


def test_a_command_that_starts_says_so() -> None:
    # codex prints nothing more of it until it completes (0.163-0.171).
    assert parse_exec_line(
        b'{"type":"item.started","item":{"id":"item_2","type":"command_execution",'
        b'"command":"ls","aggregated_output":"","exit_code":null,"status":"in_progress"}}'
    ) == ItemStarted("item_2", "command_execution")


def test_completed_items_say_what_completed() -> None:
    """The runner reads the rollout for blocks when a tool item completes (codex 0.163 lines)."""
    assert parse_exec_line(
        b'{"type":"item.completed","item":{"id":"item_4","type":"mcp_tool_call","server":"s",'
        b'"tool":"t","status":"completed"}}'
    ) == ItemCompleted("item_4", "mcp_tool_call")
    assert parse_exec_line(
        b'{"type":"item.completed","item":{"id":"item_3","type":"reasoning","text":"hmm"}}'
    ) == Reasoning("item_3", "hmm")


def test_malformed_lines_are_values_not_exceptions() -> None:
    for line in [
        b"",
        b"not json",
        b"[1,2]",
        b'{"no_type":1}',
        b'{"type":"thread.started"}',
        b"\xff\xfe",
        b'{"type": 5}',
    ]:
        assert isinstance(parse_exec_line(line), Malformed)


def test_odd_shapes_degrade_gracefully() -> None:
    assert parse_exec_line(b'{"type":"turn.completed"}') == TurnCompleted(Usage())
    assert parse_exec_line(
        b'{"type":"turn.completed","usage":{"input_tokens":"x","output_tokens":true}}'
    ) == TurnCompleted(Usage())
    assert parse_exec_line(b'{"type":"turn.failed"}') == TurnFailed("turn failed")
    assert parse_exec_line(b'{"type":"turn.failed","error":"plain"}') == TurnFailed("plain")
