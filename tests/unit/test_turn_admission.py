"""A turn at its account (``_turn/turn_admission.py``), on its own: the wait for a place and what
ends it, when a failed run is sent again and after what pause, and what the account is told at the
end. A fake clock for the account and the deadlines; the waits themselves are real and short."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from plexum_openai_provider._turn.admission import Admission, Ticket
from plexum_openai_provider._turn.cancel import Cancel
from plexum_openai_provider._turn.mapping import AttemptState
from plexum_openai_provider._turn.turn_admission import TurnAdmission
from plexum_openai_provider.events import Event, Notice, event_to_dict
from plexum_openai_provider.requests import TurnError, TurnResult

pytestmark = pytest.mark.timeout(10)

RATE = "exceeded retry limit, last status: 429 Too Many Requests"
USAGE = "You've hit your usage limit. Upgrade to Pro, or try again in 1 hour."


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Rig:
    """One turn's side of an account: what it says, what it is doing, its pauses."""

    def __init__(self, ticket: Ticket | None, clock: Clock, max_retries: int = 0) -> None:
        self.said: list[Event] = []
        self.doing: list[str] = []
        self.pauses: list[tuple[int, float | None]] = []
        self.cancel = Cancel()

        def backoff(retry: int, after: float | None) -> float:
            self.pauses.append((retry, after))
            return 0.5 * retry

        self.account = TurnAdmission(
            ticket,
            turn_id="t-1",
            cancel=self.cancel,
            emit=self.emit,
            doing=self.doing.append,
            turn_timeout_s=30,
            backoff=backoff,
            clock=clock,
            max_retries=max_retries,
        )

    def emit(self, events: Sequence[Event]) -> None:
        self.said.extend(events)


def failed(message: str) -> AttemptState:
    return AttemptState(thread_id="th", failed=message, input_taken=True)


async def test_a_turn_with_room_goes_at_once_and_one_without_is_told_its_place() -> None:
    clock = Clock()
    admission = Admission(1, name="seat", clock=clock)
    first = Rig(admission.enter("t-0", "a"), clock)
    assert await first.account.wait(clock.now + 30) is None
    assert first.said == [] and first.doing == []
    second = Rig(admission.enter("t-1", "b"), clock)
    waiting = asyncio.ensure_future(second.account.wait(clock.now + 30))
    await asyncio.sleep(0)
    assert [event_to_dict(e) for e in second.said] == [
        {
            "type": "notice",
            "code": "waiting_for_account",
            "message": "the account runs 1 turn at once; this turn waits for one to end"
            " (1st in line)",
            "data": {"account": "seat", "place": 1, "limit": 1, "running": 1},
        }
    ]
    assert second.doing == ["waiting for the account"] and not waiting.done()
    first.account.end(TurnResult("t-0", "completed", "th"), ran=True)
    assert await asyncio.wait_for(waiting, 5) is None


async def test_the_wait_ends_at_the_deadline_or_on_a_cancel() -> None:
    clock = Clock()
    admission = Admission(2, clock=clock)
    for running in ("t-a", "t-b"):
        admission.enter(running, "a")
    late = Rig(admission.enter("t-1", "c"), clock)
    error = await late.account.wait(clock.now + 0.05)  # 50 ms of the fake clock's future
    assert error == TurnError(
        "timeout",
        "the turn waited turn_timeout_s=30 s for the account (2 turns at once) and did not run",
        True,
    )
    cancelled = Rig(admission.enter("t-2", "d"), clock)
    waiting = asyncio.ensure_future(cancelled.account.wait(clock.now + 30))
    await asyncio.sleep(0)
    cancelled.cancel.ask("cancelled by the host")
    assert await asyncio.wait_for(waiting, 5) == TurnError("cancelled", "cancelled by the host")


async def test_a_spent_quota_ends_the_turn_before_it_waits_and_only_a_run_spends_it() -> None:
    clock = Clock()
    admission = Admission(1, clock=clock)
    unrun = Rig(admission.enter("t-0", "a"), clock)
    # A usage_limit of a turn codex never ran (the quota was already spent) spends nothing.
    unrun.account.end(
        TurnResult("t-0", "failed", None, error=TurnError("usage_limit", USAGE, True, False, 60)),
        ran=False,
    )
    assert admission.spent_now() is None
    ran = Rig(admission.enter("t-1", "a"), clock)
    ran.account.end(
        TurnResult("t-1", "failed", "th", error=TurnError("usage_limit", USAGE, True, True, 3600)),
        ran=True,
    )
    clock.now += 600
    later = Rig(admission.enter("t-2", "b"), clock)
    assert await later.account.wait(clock.now + 30) == TurnError(
        "usage_limit", USAGE, True, False, 3000
    )
    assert later.said == []  # told by its error, not by a notice


def test_only_a_run_failed_for_the_accounts_load_is_sent_again_within_its_bounds() -> None:
    clock = Clock()
    rig = Rig(None, clock, max_retries=2)
    deadline = clock.now + 10
    assert rig.account.retry_delay(failed(RATE), 1, deadline) == 0.5
    assert rig.account.retry_delay(failed(f"{RATE}: Please try again in 4s."), 2, deadline) == 1.0
    assert rig.pauses == [(1, None), (2, 4.0)]  # codex's retry_after_s reaches the backoff
    assert rig.account.retry_delay(failed(RATE), 3, deadline) is None  # max_retries
    assert rig.account.retry_delay(failed("stream disconnected"), 1, deadline) is None
    assert rig.account.retry_delay(AttemptState(thread_id="th"), 1, deadline) is None
    clock.now = deadline - 0.5  # the pause would end at the deadline
    assert rig.account.retry_delay(failed(RATE), 1, deadline) is None
    clock.now = deadline - 0.6
    assert rig.account.retry_delay(failed(RATE), 1, deadline) == 0.5
    rig.cancel.ask("cancelled by the host")
    assert rig.account.retry_delay(failed(RATE), 1, deadline) is None
    # Neither a run that was not throttled nor a cancelled turn asked for a pause.
    assert len(rig.pauses) == 4


async def test_a_run_sent_again_is_told_and_keeps_its_place_before_later_arrivals() -> None:
    clock = Clock()
    admission = Admission(2, clock=clock)
    ticket = admission.enter("t-1", "a")
    rig = Rig(ticket, clock, max_retries=3)
    other = admission.enter("t-2", "b")
    later = admission.enter("t-3", "c")
    going = asyncio.ensure_future(rig.account.again(failed(RATE), 1, 0.0, clock.now + 30))
    await asyncio.sleep(0.01)
    # The 429 cut the limit to 1, another turn runs: this one waits, first in line.
    assert (admission.limit, ticket.place, later.place) == (1, 1, 2)
    notice, waiting = rig.said
    assert isinstance(notice, Notice) and notice.code == "retrying"
    assert notice.message == (
        f"codex failed the turn (rate_limited: {RATE}); it is sent again in 0.00 s"
        " (retry 1 of at most 3)"
    )
    assert notice.data == {"reason": "rate_limited", "delay_s": 0.0, "retry": 1}
    assert isinstance(waiting, Notice) and waiting.code == "waiting_for_account"
    assert rig.doing == ["sent again in 0.0 s (rate_limited)", "waiting for the account"]
    other.release("completed")
    assert await asyncio.wait_for(going, 5) is None
    assert (ticket.state, later.state) == ("running", "waiting")


async def test_a_cancel_during_the_pause_ends_the_turn() -> None:
    rig = Rig(None, Clock(), max_retries=1)
    going = asyncio.ensure_future(rig.account.again(failed(RATE), 1, 30.0, 1e9))
    await asyncio.sleep(0.01)
    rig.cancel.ask("the plugin is shutting down")
    error = await asyncio.wait_for(going, 5)
    assert error == TurnError("cancelled", "the plugin is shutting down")


def test_the_end_tells_the_account_how_the_model_took_the_turn() -> None:
    admission = Admission(4, clock=Clock())
    throttled = TurnResult("t", "failed", "th", error=TurnError("rate_limited", RATE, True))
    # Throttled before codex ran (a cancel, say): no cut.
    Rig(admission.enter("t-0", "a"), Clock()).account.end(throttled, ran=False)
    assert (admission.limit, admission.throttled) == (4, 0)
    Rig(admission.enter("t-1", "a"), Clock()).account.end(throttled, ran=True)
    assert (admission.limit, admission.throttled) == (2, 1)
    Rig(admission.enter("t-2", "a"), Clock()).account.end(None, ran=True)  # ended inside
    assert admission.snapshot()["running"] == 0
    reported: list[object] = []
    admission.on_report = lambda a: reported.append(a.rate_limits)
    rig = Rig(admission.enter("t-3", "a"), Clock())
    rig.account.report(None)
    rig.account.report({"primary": None})
    assert reported == [{"primary": None}]
