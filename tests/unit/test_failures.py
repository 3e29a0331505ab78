"""codex's failures, as the scripted model provokes them (recorded from codex 0.163's exec and
app-server, the same on 0.171: tests/data/failures-0.163.json), mapped to codes a host can act on,
and the error's fields on the fake seam."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext, TurnRequest
from plexum_openai_provider._codex.exec_events import parse_exec_line
from plexum_openai_provider._codex.failures import classify, is_reconnect
from plexum_openai_provider._engine.app_server_events import AppServerTurn
from plexum_openai_provider._engine.exec import exec_event
from plexum_openai_provider._engine.seam import CodexError, CodexWarning, TurnFailed
from plexum_openai_provider.testing import FakeEngine, FakeRun, exec_lines
from tests.helpers import provider_on

CodexMessages = (CodexError, CodexWarning, TurnFailed)

DATA = json.loads((Path(__file__).parent.parent / "data" / "failures-0.163.json").read_text())
THREAD = "01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1"
EXPECTED = {
    "unauthorized": ("unauthorized", False),
    "rate_limited": ("rate_limited", True),
    "usage_limit": ("usage_limit", False),  # "try again later": no time given
    "overloaded": ("overloaded", True),
    "context": ("context_window_exceeded", False),
    "server_error": ("codex_failed", True),
}


def exec_failure(case: str) -> str:
    [failed] = [line for line in DATA[case]["exec"] if line["type"] == "turn.failed"]
    return str(failed["error"]["message"])


def app_server_failure(case: str) -> tuple[str, Any]:
    [done] = [n for n in DATA[case]["app-server"] if n["method"] == "turn/completed"]
    error = done["params"]["turn"]["error"]
    return error["message"], error["codexErrorInfo"]


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_recorded_failures_are_classified_alike_on_both_engines(case: str) -> None:
    by_message = classify(exec_failure(case))
    by_info = classify(*app_server_failure(case))
    assert (by_message.code, by_message.retryable) == EXPECTED[case]
    assert (by_info.code, by_info.retryable) == EXPECTED[case]


def test_what_the_host_is_told_to_do() -> None:
    assert "plexum-openai-provider-plugin login" in classify(exec_failure("unauthorized")).message
    assert "session/consume" in classify(exec_failure("context")).message
    # Where codex says when, the host is told when.
    assert classify("Rate limit reached. Please try again in 20s.").retry_after_s == 20
    usage = classify("You've hit your usage limit. Try again in 2 hours 5 minutes.")
    assert (usage.code, usage.retryable, usage.retry_after_s) == ("usage_limit", True, 7500)
    later = classify(exec_failure("usage_limit"))  # "try again later": no time, not retryable
    assert (later.retryable, later.retry_after_s) == (False, None)


def test_the_time_codex_gives_for_a_usage_limit_is_in_the_error() -> None:
    # codex 0.163's words when the model's 429 carries resets_at (local time; the date when it
    # is not today).
    limit = "You’ve hit your usage limit. Upgrade to Pro (…) or try again at {}."
    now = datetime(2026, 12, 2, 7, 40, 30).timestamp()
    assert classify(limit.format("9:05 AM"), now=now).retry_after_s == 5070
    assert classify(limit.format("12:10 AM"), now=now).retry_after_s == 16 * 3600 + 29 * 60 + 30
    assert classify(limit.format("Dec 4th, 2026 1:00 PM"), now=now).retry_after_s == (
        2 * 86400 + 5 * 3600 + 19 * 60 + 30
    )
    assert classify(limit.format("7:40 AM"), now=now).retry_after_s == 0  # this minute
    assert classify("You’ve hit your usage limit. Try again at 9:05 AM.", now=now).retryable


async def test_the_error_says_whether_codex_already_had_the_messages(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "home").mkdir()
    took = [exec_lines.thread_started(THREAD), exec_lines.turn_started()]
    engine = FakeEngine(
        [
            FakeRun([*took, exec_lines.turn_failed(exec_failure("unauthorized"))]),
            FakeRun([exec_lines.thread_started(THREAD), exec_lines.turn_failed("x")]),
        ]
    )
    provider = provider_on(engine, tmp_path)
    agent = AgentContext("cx", tmp_path / "ws")
    first = await provider.start_turn(TurnRequest(agent, "hi"))
    events = [e async for e in first]
    result = await first.result()
    assert result.error is not None
    assert (result.error.code, result.error.retryable, result.error.delivered) == (
        "unauthorized",
        False,
        True,
    )
    assert [(e.code, e.retryable, e.delivered) for e in events if e.type == "error"] == [
        ("unauthorized", False, True)
    ]
    wire = result.to_wire()["error"]
    assert wire == {
        "code": "unauthorized",
        "message": result.error.message,
        "retryable": False,
        "delivered": True,
        "retry_after_s": None,
    }
    second = await (await provider.start_turn(TurnRequest(agent, "hi"))).result()
    assert second.error is not None and (second.error.code, second.error.delivered) == (
        "codex_failed",
        False,
    )


def _reconnect_records() -> list[dict[str, Any]]:
    lines = (
        (Path(__file__).parent.parent / "data" / "reconnect-0.163.jsonl").read_text().splitlines()
    )
    return [json.loads(line) for line in lines]


def test_reconnect_notices_are_told_apart_on_recorded_lines() -> None:
    """What codex 0.163 said against a closed port and a stalled stream, on both engines: its
    reconnect notices, and none of its other errors and warnings."""
    seen = {"exec": 0, "app-server": 0}
    for record in _reconnect_records():
        raw = record["raw"]
        if record["engine"] == "exec":
            events = [exec_event(parse_exec_line(json.dumps(raw).encode()))]
        else:
            turn = AppServerTurn(raw["params"]["threadId"], raw["params"].get("turnId", "t"))
            events = turn.feed(raw["method"], raw["params"])
        messages = [e.message for e in events if isinstance(e, CodexMessages)]
        assert messages, record
        assert [is_reconnect(m) for m in messages] == [record["reconnect"]], record
        seen[record["engine"]] += record["reconnect"]
    assert seen["exec"] >= 4 and seen["app-server"] >= 4  # both kinds, on both engines
    # codex's transport fallback (its source, core/src/responses_retry.rs; seen by an operator
    # with no network), said between its WebSocket and its HTTPS attempts.
    assert is_reconnect(
        "Falling back from WebSockets to HTTPS transport. stream disconnected before completion:"
        " failed to lookup address information: Try again"
    )
    assert not is_reconnect("stream disconnected before completion: idle timeout waiting for SSE")
