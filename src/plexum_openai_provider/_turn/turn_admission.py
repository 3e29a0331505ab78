"""A turn at its account: its wait for a place, its runs sent again after a 429, how it went.

The account's side is :mod:`.admission` (the line, the limit, a spent quota); this is the turn's,
which the runner calls at four moments:

* :meth:`TurnAdmission.wait`, before codex runs: the turn's place at the account. A turn that
  must wait says so at once (a ``waiting_for_account`` notice: its place in line, the limit, how
  many run) and waits inside its own task, so that a cancel or ``turn_timeout_s`` (the wait
  counts) ends it before codex starts. While the account's quota is spent the turn fails at once
  (``usage_limit``, with the seconds left), without a model request.
* :meth:`TurnAdmission.retry_delay`, when codex failed a run: whether the turn is sent again, and
  after what pause. Only for the account's load (``rate_limited``, ``overloaded``), at most
  ``max_retries`` times, and only if the pause (:func:`.admission.backoff_s`: doubling, a random
  half, never less than codex's ``retry_after_s``) ends before ``turn_timeout_s``.
* :meth:`TurnAdmission.again`, before it is: a ``retrying`` notice, back in line at its own
  number, the pause, its place again.
* :meth:`TurnAdmission.end`, once the turn is over: its place is freed and the account told how
  the model took it (a 429 cuts its limit, a completion may raise it, a ``usage_limit`` of a turn
  that ran is remembered); :meth:`TurnAdmission.report` hands on what codex recorded of the
  account's rate limits.

Each wait ends early on the turn's cancel (:class:`.cancel.Cancel`); the time is read through
``clock``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from .._codex.failures import classify
from ..events import Event, Notice
from ..requests import TurnError, TurnResult
from .admission import Ticket, backoff_s
from .cancel import Cancel
from .mapping import AttemptState

__all__ = ["THROTTLED", "TurnAdmission"]

log = logging.getLogger(__name__)

# Failures of the account's load, not of the turn: the plugin sends the turn again itself, after a
# pause (see .admission), while turn_timeout_s and ``max_turn_retries`` allow.
THROTTLED = frozenset({"rate_limited", "overloaded"})


class TurnAdmission:
    """One turn's side of its account's admission (see the module docstring). ``ticket`` is the
    turn's place at the account (None: admitted, nothing to report or release); ``emit`` says an
    event to the host, ``doing`` what the turn does now (``status``)."""

    def __init__(
        self,
        ticket: Ticket | None,
        *,
        turn_id: str,
        cancel: Cancel,
        emit: Callable[[Sequence[Event]], None],
        doing: Callable[[str], None],
        turn_timeout_s: float,
        max_retries: int = 0,
        backoff: Callable[[int, float | None], float] = backoff_s,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ticket = ticket
        self._turn_id = turn_id
        self._cancel = cancel
        self._emit = emit
        self._doing = doing
        self._turn_timeout_s = turn_timeout_s
        self._max_retries = max_retries
        self._backoff = backoff
        self._clock = clock

    async def wait(self, deadline: float) -> TurnError | None:
        """Wait for the turn's place at the account (telling the host at once that it waits);
        the error that ends the turn instead (cancelled, the deadline, a spent quota)."""
        ticket = self._ticket
        if ticket is None:
            return None
        spent = _spent(ticket)
        if spent is not None:
            return spent
        if ticket.state != "running":
            admission = ticket.admission
            place = ticket.place
            self._emit(
                [
                    Notice(
                        "waiting_for_account",
                        f"the account runs {_turns(admission.limit)} at once; this turn waits"
                        f" for one to end ({_ordinal(place)} in line)",
                        {
                            "account": admission.name,
                            "place": place,
                            "limit": admission.limit,
                            "running": admission.snapshot()["running"],
                        },
                    )
                ]
            )
            self._doing("waiting for the account")
            waited = await self._cancel.wait(ticket.admitted(), deadline - self._clock())
            if waited == "cancel":
                return self._cancel.error()
            if waited == "timeout":
                return TurnError(
                    "timeout",
                    f"the turn waited turn_timeout_s={self._turn_timeout_s:g} s for the"
                    f" account ({_turns(admission.limit)} at once) and did not run",
                    True,
                )
            log.info("turn %s: admitted after %.2f s", self._turn_id, ticket.waited_s)
        return _spent(ticket)

    def retry_delay(self, state: AttemptState, retry: int, deadline: float) -> float | None:
        """The pause before a run codex failed (``state``) is sent again, the ``retry``-th time
        (1, 2, …); None: it is not (it did not fail for the account's load, the retries are used
        up, the pause would end past ``deadline``, the turn is cancelled)."""
        if state.done is not None or state.failed is None:
            return None
        if retry > self._max_retries or self._cancel.asked:
            return None
        failure = classify(state.failed, state.failed_info)
        if failure.code not in THROTTLED:
            return None
        delay = self._backoff(retry, failure.retry_after_s)
        if self._clock() + delay >= deadline:
            return None
        return delay

    async def again(
        self, state: AttemptState, retry: int, delay: float, deadline: float
    ) -> TurnError | None:
        """Before a throttled run is sent again (see :meth:`retry_delay`): a ``retrying`` notice,
        back in line at its own number, the pause, its place at the account again. None: send it;
        else why not after all (cancelled, the deadline, a spent quota)."""
        assert state.failed is not None
        failure = classify(state.failed, state.failed_info)
        self._emit(
            [
                Notice(
                    "retrying",
                    f"codex failed the turn ({failure.code}: {failure.message}); it is sent again"
                    f" in {delay:.2f} s (retry {retry} of at most {self._max_retries})",
                    {"reason": failure.code, "delay_s": round(delay, 3), "retry": retry},
                )
            ]
        )
        ticket = self._ticket
        if ticket is not None:
            ticket.again("throttled")
        self._doing(f"sent again in {delay:.1f} s ({failure.code})")
        if await self._cancel.wait(None, delay) == "cancel":
            return self._cancel.error()
        if ticket is not None:
            return await self.wait(deadline)
        return None

    def report(self, rate_limits: dict[str, Any] | None) -> None:
        """What codex recorded of the account's rate limits (None: nothing), to the account."""
        if rate_limits is not None and self._ticket is not None:
            self._ticket.admission.reported(rate_limits)

    def end(self, result: TurnResult | None, *, ran: bool) -> None:
        """The turn is over (``ran``: codex was started for it; None: it ended without a result):
        free its place, and tell the account how the model took it."""
        ticket = self._ticket
        if ticket is None:
            return
        error = result.error if result is not None else None
        if result is not None and result.status == "completed":
            ticket.release("completed")
        elif error is not None and error.code in THROTTLED and ran:
            ticket.release("throttled")
        else:
            # Not a turn that failed at once for a spent quota: one codex ran says when it ends.
            if error is not None and error.code == "usage_limit" and ran and error.retry_after_s:
                ticket.admission.spend(error.message, error.retry_after_s)
            ticket.release("other")


def _spent(ticket: Ticket) -> TurnError | None:
    spent = ticket.admission.spent_now()
    if spent is None:
        return None
    message, left = spent
    return TurnError("usage_limit", message, True, False, round(left, 3))


def _turns(n: int) -> str:
    return f"{n} turn{'' if n == 1 else 's'}"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
