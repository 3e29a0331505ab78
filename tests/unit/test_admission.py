"""The account's admission: its line and limit on a fake clock, the backoff, and turns on the fake
codex seam that wait for the account, are sent again after a 429, or stop at a spent quota."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext, HostConfig, Notice, TurnRequest
from plexum_openai_provider._codex.login import LoginState
from plexum_openai_provider._codex.rollout import account_rate_limits
from plexum_openai_provider._engine.select import EngineInfo
from plexum_openai_provider._turn.admission import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    Admission,
    backoff_s,
    default_limit,
)
from plexum_openai_provider._turn.delivery import load_delivery
from plexum_openai_provider._turn.messages import CONTINUE
from plexum_openai_provider._turn.records import records_dir
from plexum_openai_provider.events import event_to_dict
from plexum_openai_provider.testing import FakeEngine, FakeRun, exec_lines
from tests.helpers import provider_on, wait_until

THREAD = "01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1"
RATE = "exceeded retry limit, last status: 429 Too Many Requests"
USAGE = "You've hit your usage limit. Upgrade to Pro, or try again in 1 hour."
pytestmark = pytest.mark.timeout(10)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- the line and the limit -------------------------------------------------------------------
def test_turns_run_up_to_the_limit_and_the_rest_wait_in_arrival_order() -> None:
    clock = Clock()
    admission = Admission(2, clock=clock)
    tickets = [admission.enter(f"t-{i}", f"agent-{i % 2}") for i in range(5)]
    assert [t.state for t in tickets] == ["running"] * 2 + ["waiting"] * 3
    assert [t.place for t in tickets] == [0, 0, 1, 2, 3]
    clock.now += 4
    tickets[1].release("completed")
    assert tickets[2].state == "running" and tickets[2].waited_s == 4
    assert [t.place for t in tickets[3:]] == [1, 2]
    tickets[3].release()  # cancelled while it waited: it leaves the line
    assert tickets[4].place == 1
    tickets[0].release("other")
    assert tickets[4].state == "running"
    assert admission.snapshot()["running"] == 2 and admission.snapshot()["waiting"] == 0
    assert admission.longest_wait_s == 4


def test_a_turn_sent_again_keeps_its_place_before_later_arrivals() -> None:
    admission = Admission(2, clock=Clock())
    first, second = admission.enter("t-1", "a"), admission.enter("t-2", "b")
    later = admission.enter("t-3", "c")
    first.again("throttled")  # the limit is cut to 1: second runs, first is next, then later
    assert admission.limit == 1
    assert (first.place, later.place) == (1, 2)
    second.release("completed")
    assert first.state == "running" and later.state == "waiting"


def test_the_limit_halves_once_for_turns_that_ran_together_and_climbs_back() -> None:
    admission = Admission(8, clock=Clock())
    tickets = [admission.enter(f"t-{i}", f"a{i}") for i in range(8)]
    for ticket in tickets[:6]:  # six of the eight got a 429 together
        ticket.release("throttled")
    assert admission.limit == 4 and admission.throttled == 6
    for ticket in tickets[6:]:  # admitted before the cut: they do not lift it
        ticket.release("completed")
    assert admission.limit == 4
    # The account full at 4: after 4 completions, 5; after 5 more, 6.
    climbed = []
    for round_ in range(3):
        batch = [admission.enter(f"r{round_}-{i}", "x") for i in range(admission.limit)]
        for ticket in batch:
            ticket.release("completed")
        climbed.append(admission.limit)
    assert climbed == [5, 6, 7]
    # One at a time, the account never full: completions do not lift it.
    lonely = Admission(3, clock=Clock())
    lonely.limit = 1
    lonely.ceiling = 3
    for i in range(5):
        lonely.enter(f"t-{i}", "a").release("completed")
    assert lonely.limit == 2  # each of those had the account full at 1
    lonely.enter("u", "a").release("completed")
    assert lonely.limit == 2  # at 2, one alone is not full


def test_the_limit_never_goes_below_one() -> None:
    admission = Admission(2, clock=Clock())
    for i in range(5):
        admission.enter(f"t-{i}", "a").release("throttled")
    assert admission.limit == 1


def test_a_spent_quota_counts_down_and_ends_at_its_time_or_with_a_completed_turn() -> None:
    clock = Clock()
    admission = Admission(2, clock=clock)
    admission.spend(USAGE, 3600)
    clock.now += 600
    assert admission.spent_now() == (USAGE, 3000)
    assert admission.snapshot()["usage_limit_retry_after_s"] == 3000
    clock.now += 3000
    assert admission.spent_now() is None
    admission.spend(USAGE, 60)
    admission.enter("t-1", "a").release("completed")
    assert admission.spent_now() is None


def test_backoff_doubles_with_jitter_up_to_a_cap_and_honours_codex() -> None:
    assert backoff_s(1, rng=lambda: 0.0) == BACKOFF_BASE_S / 2
    assert backoff_s(1, rng=lambda: 1.0) == BACKOFF_BASE_S
    assert backoff_s(3, rng=lambda: 1.0) == BACKOFF_BASE_S * 4
    assert backoff_s(40, rng=lambda: 1.0) == BACKOFF_CAP_S
    assert backoff_s(1, 7.5, rng=lambda: 1.0) == 7.5  # codex said when
    spread = {backoff_s(2, rng=lambda v=v: v) for v in (0.1, 0.5, 0.9)}  # type: ignore[misc]
    assert len(spread) == 3  # turns that failed together come back apart


def test_the_default_limit_follows_the_login() -> None:
    assert default_limit("chatgpt") == 2 and default_limit(None) == 2
    assert default_limit("api_key") > 2


# -- turns on the fake seam ---------------------------------------------------------------------
def answered(text: str, thread: str = THREAD) -> FakeRun:
    return FakeRun(exec_lines.turn(thread, text))


def throttled(thread: str = THREAD) -> FakeRun:
    return FakeRun(
        [
            exec_lines.thread_started(thread),
            exec_lines.turn_started(),
            exec_lines.error(RATE),
            exec_lines.turn_failed(RATE),
        ],
        exit_code=1,
    )


class Rig:
    def __init__(self, tmp_path: Path, runs: list[FakeRun], **config: Any) -> None:
        self.tmp_path = tmp_path
        self.engine = FakeEngine(list(runs))
        self.pauses: list[tuple[int, float | None]] = []

        def backoff(retry: int, after: float | None) -> float:
            self.pauses.append((retry, after))
            return 0.0

        self.provider = provider_on(
            self.engine, tmp_path, HostConfig.parse(config), backoff=backoff
        )

    def agent(self, name: str) -> AgentContext:
        workspace = self.tmp_path / name
        workspace.mkdir(exist_ok=True)
        return AgentContext(name, workspace)

    async def start(self, agent: str, text: str, turn_id: str | None = None) -> Any:
        return await self.provider.start_turn(TurnRequest(self.agent(agent), text, turn_id=turn_id))


async def first_event(turn: Any) -> Any:
    return await asyncio.wait_for(anext(aiter(turn)), 5)


async def test_turns_beyond_the_limit_wait_told_their_place_and_run_in_arrival_order(
    tmp_path: Path,
) -> None:
    rig = Rig(
        tmp_path,
        [FakeRun([exec_lines.thread_started(THREAD)], hang=True), answered("b"), answered("c")],
        max_concurrent_turns=1,
    )
    first = await rig.start("a", "A")
    await wait_until(lambda: len(rig.engine.specs) == 1)
    second, third = await rig.start("b", "B"), await rig.start("c", "C")
    told = [await first_event(second), await first_event(third)]
    assert [event_to_dict(n) for n in told] == [
        {
            "type": "notice",
            "code": "waiting_for_account",
            "message": "the account runs 1 turn at once; this turn waits for one to end"
            f" ({place} in line)",
            "data": {"account": "default", "place": n, "limit": 1, "running": 1},
        }
        for n, place in ((1, "1st"), (2, "2nd"))
    ]
    assert len(rig.engine.specs) == 1  # neither started codex
    first.cancel()
    results = [await t.result() for t in (first, second, third)]
    assert [r.status for r in results] == ["cancelled", "completed", "completed"]
    assert [s.prompt for s in rig.engine.specs] == ["A", "B", "C"]


async def test_a_waiting_turn_cancelled_or_shut_down_runs_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [FakeRun([exec_lines.thread_started(THREAD)], hang=True)])
    rig.provider._admission.configure(1)
    running = await rig.start("a", "A")
    waiting, later = await rig.start("b", "B"), await rig.start("c", "C")
    assert (await first_event(waiting)).code == "waiting_for_account"
    waiting.cancel("cancelled by the host")
    result = await waiting.result()
    assert result.status == "cancelled" and result.error is not None
    assert (result.error.message, result.error.delivered) == ("cancelled by the host", False)
    assert (await first_event(later)).data["place"] == 2  # told when it came
    assert rig.provider._admission.snapshot()["waiting_turns"] == [later.turn_id]
    await asyncio.wait_for(rig.provider.close(), 5)
    assert [(await t.result()).status for t in (running, later)] == ["cancelled", "cancelled"]
    assert [s.prompt for s in rig.engine.specs] == ["A"]


async def test_the_wait_counts_toward_turn_timeout_s(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [], max_concurrent_turns=1, turn_timeout_s=0.3)
    rig.provider._admission.enter("t-other", "other")  # a turn of another agent runs
    waiting = await rig.start("b", "B")
    result = await waiting.result()
    assert result.status == "failed" and result.error is not None
    assert result.error.code == "timeout" and "waited turn_timeout_s=0.3 s" in result.error.message
    assert rig.engine.specs == []


async def test_a_throttled_turn_is_sent_again_and_codex_never_gets_a_message_twice(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, [throttled(), throttled(), answered("at last")])
    turn = await rig.start("a", "hello")
    events = [e async for e in turn]
    result = await turn.result()
    assert result.status == "completed" and result.thread_id == THREAD
    retrying = [e for e in events if isinstance(e, Notice) and e.code == "retrying"]
    assert [n.data for n in retrying] == [
        {"reason": "rate_limited", "delay_s": 0.0, "retry": 1},
        {"reason": "rate_limited", "delay_s": 0.0, "retry": 2},
    ]
    assert rig.pauses == [(1, None), (2, None)]
    # codex took "hello" on the first run; the runs after resume its thread and are given none
    # of the host's messages again.
    assert [(s.resume, s.prompt) for s in rig.engine.specs] == [
        (None, "hello"),
        (THREAD, CONTINUE),
        (THREAD, CONTINUE),
    ]
    record = load_delivery(records_dir(rig.provider.state_dir, rig.agent("a").workspace))
    assert record is not None and not record.open and record.thread_id == THREAD
    snapshot = rig.provider._admission.snapshot()
    # 2 (the default) cut to 1 by the first 429 and kept there by the second; the completed turn,
    # which had the account to itself at 1, lifted it back to 2.
    assert (snapshot["throttled"], snapshot["limit"], snapshot["running"]) == (2, 2, 0)


async def test_retries_stop_at_max_turn_retries(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [throttled(), throttled()], max_turn_retries=1)
    turn = await rig.start("a", "hello")
    result = await turn.result()
    assert result.status == "failed" and result.error is not None
    assert (result.error.code, result.error.retryable, result.error.delivered) == (
        "rate_limited",
        True,
        True,
    )
    assert len(rig.engine.specs) == 2


async def test_a_spent_quota_fails_the_next_turns_at_once_without_codex(tmp_path: Path) -> None:
    spent = FakeRun(
        [
            exec_lines.thread_started(THREAD),
            exec_lines.turn_started(),
            exec_lines.turn_failed(USAGE),
        ],
        exit_code=1,
    )
    rig = Rig(tmp_path, [spent, answered("later")])
    first = await (await rig.start("a", "hello")).result()
    assert first.error is not None and first.error.code == "usage_limit"
    assert first.error.retry_after_s == 3600
    turn = await rig.start("b", "hi")
    events = [e async for e in turn]
    second = await turn.result()
    assert second.status == "failed" and second.error is not None
    error = second.error
    assert (error.code, error.message, error.retryable, error.delivered) == (
        "usage_limit",
        USAGE,
        True,
        False,
    )
    assert error.retry_after_s is not None and 3590 < error.retry_after_s < 3600
    assert [e.type for e in events] == ["error"]
    assert len(rig.engine.specs) == 1  # no model request


def test_codex_rate_limits_are_read_from_its_token_count_record() -> None:
    # codex 0.163's record, with the service's x-codex-primary-* and -secondary-* headers.
    recorded = {
        "limit_id": "codex",
        "limit_name": None,
        "primary": {"used_percent": 42.5, "window_minutes": 300, "resets_at": 1796340794},
        "secondary": {"used_percent": 7.0, "window_minutes": 10080, "resets_at": 1796423594},
        "credits": None,
        "individual_limit": None,
        "spend_control_reached": None,
        "plan_type": None,
        "rate_limit_reached_type": None,
    }
    assert account_rate_limits(recorded) == {
        "primary": {"used_percent": 42.5, "window_minutes": 300, "resets_at": 1796340794},
        "secondary": {"used_percent": 7.0, "window_minutes": 10080, "resets_at": 1796423594},
        "plan_type": None,
        "reached": None,
    }
    assert account_rate_limits({"primary": None, "secondary": None}) is None
    assert account_rate_limits("nonsense") is None
    told: list[Any] = []
    admission = Admission(2, on_report=lambda a: told.append(a.rate_limits))
    limits = account_rate_limits(recorded)
    assert limits is not None
    admission.reported(limits)
    admission.reported(dict(limits))  # the same again: not told twice
    assert told == [limits] and admission.snapshot()["rate_limits"] == limits


# -- several accounts ---------------------------------------------------------------------------
async def test_each_agent_stays_on_one_account_pinned_or_the_least_loaded(tmp_path: Path) -> None:
    hang = FakeRun([exec_lines.thread_started(THREAD)], hang=True)
    first, second = (
        FakeEngine([hang, answered("x again")]),
        FakeEngine([answered("y"), answered("p")]),
    )
    config = HostConfig.parse(
        {
            "max_concurrent_turns": 1,
            "accounts": [
                {"name": "seat-1", "codex_home": str(tmp_path / "home-1")},
                {"name": "seat-2", "codex_home": str(tmp_path / "home-2"), "agents": ["p"]},
            ],
        }
    )
    provider = provider_on(
        first,
        tmp_path,
        config,
        more_accounts=[("seat-2", second, EngineInfo("exec", "exec"), LoginState(True, "chatgpt"))],
    )
    rig = Rig(tmp_path, [])
    rig.provider = provider

    x = await rig.start("x", "X")  # the least loaded: seat-1 (first in order), and it hangs
    y = await rig.start("y", "Y")  # seat-1 is full: seat-2, and it does not wait
    assert (await y.result()).status == "completed"
    assert [s.prompt for s in second.specs] == ["Y"]
    assert (await (await rig.start("p", "P")).result()).status == "completed"  # pinned
    assert [s.prompt for s in second.specs] == ["Y", "P"]
    snapshot = provider.accounts()
    assert [(a["account"], a["codex_home"], a["running"]) for a in snapshot] == [
        ("seat-1", str(tmp_path / "home-1"), 1),
        ("seat-2", str(tmp_path / "home-2"), 0),
    ]
    assert json.loads((tmp_path / "state" / "accounts.json").read_text()) == {
        "x": "seat-1",
        "y": "seat-2",
    }
    x.cancel()
    await x.result()
    # A new provider (a restart) keeps each agent where its threads are.
    again = provider_on(
        FakeEngine([]),
        tmp_path,
        config,
        more_accounts=[
            ("seat-2", FakeEngine([]), EngineInfo("exec", "exec"), LoginState(None, None))
        ],
    )
    assert [again.account_of(a) for a in ("x", "y", "p", "new")] == [
        "seat-1",
        "seat-2",
        "seat-2",
        None,
    ]
    assert [a["max_concurrent_turns"] for a in again.accounts()] == [1, 1]
