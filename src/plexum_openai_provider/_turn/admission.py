"""The account's admission: how many of an account's turns talk to the model at once.

An account (one ``CODEX_HOME``, one login) serves only a few model streams at a time: a ChatGPT
account answers 429 beyond two or three concurrent streams, account-wide (codex#41702, #42685),
and codex, after its own few retries, fails the turn ("exceeded retry limit, last status: 429
Too Many Requests"). So the plugin admits at most :attr:`Admission.limit` of the account's turns
at once; the others wait, in the order they arrived, whatever their agent (a ticket is numbered
when its turn arrives; a turn sent again after a 429 keeps its number, so no later turn overtakes
it; an agent's queued turn gets its number when it becomes the agent's turn, so one busy agent
cannot starve the rest).

The limit adapts, as TCP's window does (additive increase, multiplicative decrease): a turn that
codex failed with 429 (or an overloaded model) halves it, once for the turns that ran together
(later failures of turns admitted before the cut do not cut again), never below one; each time as
many turns as the limit have completed that ran while the account was at its limit, it grows by
one, up to the
operator's ``max_concurrent_turns``. A daemon whose limit is set too high ends up running what
the account serves.

A spent quota (codex's ``usage_limit`` with the time it resets) is remembered: until that time, or
until a turn of the account completes, :meth:`Admission.spent_now` says so and the account's
turns fail at once without a model request.

Nothing here sleeps or reads the time but through ``clock`` (a fake one in the tests); the delay
before a turn is sent again is :func:`backoff_s`.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "API_KEY_LIMIT",
    "BACKOFF_BASE_S",
    "BACKOFF_CAP_S",
    "CHATGPT_LIMIT",
    "Admission",
    "Outcome",
    "Spent",
    "Ticket",
    "backoff_s",
    "default_limit",
]

log = logging.getLogger(__name__)

# A ChatGPT account serves about 2-3 concurrent streams (measured by codex's users, codex#41702):
# 2 never sees a 429 from this account's own turns. An API key's limits are its organization's,
# far higher (hundreds of requests a minute from the first tier).
CHATGPT_LIMIT = 2
API_KEY_LIMIT = 16

# A turn sent again after a 429 or an overloaded model waits BACKOFF_BASE_S * 2^(n-1) (at most
# BACKOFF_CAP_S), of which a random half, so that turns that failed together do not come back
# together; never less than what codex said (``retry_after_s``).
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0

Outcome = Literal["completed", "throttled", "other"]


def default_limit(login_method: str | None) -> int:
    """``max_concurrent_turns`` when the operator does not say: by how codex is logged in."""
    return API_KEY_LIMIT if login_method == "api_key" else CHATGPT_LIMIT


def backoff_s(
    retry: int, retry_after_s: float | None = None, rng: Callable[[], float] = random.random
) -> float:
    """The pause before the ``retry``-th time (1, 2, …) a turn is sent again."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** max(retry - 1, 0))
    delay = ceiling * (0.5 + 0.5 * rng())
    return max(delay, retry_after_s or 0.0)


@dataclass(frozen=True)
class Spent:
    """The account's quota is spent until ``until`` (``clock`` time): codex's words for it."""

    message: str
    until: float


class Ticket:
    """A turn's place at the account: waiting (:attr:`place` ≥ 1), running, or gone."""

    def __init__(self, admission: Admission, number: int, turn_id: str, agent_id: str) -> None:
        self.admission = admission
        self.number = number
        self.turn_id = turn_id
        self.agent_id = agent_id
        self.state: Literal["waiting", "running", "gone"] = "waiting"
        self.cut = 0  # the limit's cuts when it was admitted
        self.full = False  # the account was at its limit while it ran
        self.waited_s = 0.0  # in all, until admitted (each time)
        self._since = admission.clock()
        self._admitted: asyncio.Future[None] | None = None

    def __lt__(self, other: Ticket) -> bool:
        return self.number < other.number

    @property
    def place(self) -> int:
        """1 for the next to run; 0 when it runs or is gone."""
        return self.admission.place(self)

    async def admitted(self) -> None:
        """Returns once the ticket runs (at once if it does)."""
        if self.state == "running":
            return
        if self._admitted is None or self._admitted.done():
            self._admitted = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._admitted)

    def _run(self) -> None:
        self.state = "running"
        self.waited_s += self.admission.clock() - self._since
        if self._admitted is not None and not self._admitted.done():
            self._admitted.set_result(None)

    def _wait(self) -> None:
        self.state = "waiting"
        self._since = self.admission.clock()

    def release(self, outcome: Outcome = "other") -> None:
        """It is over (or leaves the line): free its place."""
        self.admission.release(self, outcome)

    def again(self, outcome: Outcome) -> None:
        """Its run ended with ``outcome`` and it will be sent again: back in line, at its own
        number."""
        self.admission.again(self, outcome)


class Admission:
    """One account's admission (see the module docstring)."""

    def __init__(
        self,
        limit: int,
        *,
        name: str = "default",
        clock: Callable[[], float] = time.monotonic,
        on_report: Callable[[Admission], None] | None = None,
    ) -> None:
        self.name = name
        self.clock = clock
        self.on_report = on_report  # called when codex reports new rate limits
        self.ceiling = limit  # the operator's max_concurrent_turns (or its default)
        self.limit = limit  # what the account is given now (≤ ceiling, ≥ 1)
        self._numbers = itertools.count(1)
        self._waiting: list[Ticket] = []  # by number
        self._running: set[Ticket] = set()
        self._cuts = 0
        self._completed_full = 0  # turns completed at this limit with the account full
        self._spent: Spent | None = None
        self.throttled = 0  # turns codex failed with 429 / overloaded, in all
        self.longest_wait_s = 0.0
        # What codex last reported of the account's rate limits (see :meth:`reported`).
        self.rate_limits: dict[str, Any] | None = None

    def configure(self, limit: int) -> None:
        """A new ceiling (the login is known now); the limit follows it."""
        self.ceiling = self.limit = limit
        self._admit()

    # -- the line ----------------------------------------------------------------------------
    def enter(self, turn_id: str, agent_id: str) -> Ticket:
        """A turn arrives: its ticket, running at once if the account has room."""
        ticket = Ticket(self, next(self._numbers), turn_id, agent_id)
        self._waiting.append(ticket)  # the highest number yet
        self._admit()
        return ticket

    @property
    def load(self) -> int:
        """Its turns running and waiting."""
        return len(self._running) + len(self._waiting)

    def place(self, ticket: Ticket) -> int:
        if ticket.state != "waiting":
            return 0
        return bisect.bisect_left(self._waiting, ticket) + 1

    def _admit(self) -> None:
        while self._waiting and len(self._running) < self.limit:
            ticket = self._waiting.pop(0)
            self._running.add(ticket)
            ticket.cut = self._cuts
            if len(self._running) >= self.limit:  # the account is used to its limit
                for running in self._running:
                    running.full = True
            ticket._run()
            self.longest_wait_s = max(self.longest_wait_s, ticket.waited_s)

    def release(self, ticket: Ticket, outcome: Outcome = "other") -> None:
        if ticket.state == "gone":
            return
        self._leave(ticket, outcome)
        ticket.state = "gone"
        self._admit()

    def again(self, ticket: Ticket, outcome: Outcome) -> None:
        if ticket.state != "running":
            return
        self._leave(ticket, outcome)
        ticket._wait()
        bisect.insort(self._waiting, ticket)
        self._admit()

    def _leave(self, ticket: Ticket, outcome: Outcome) -> None:
        if ticket.state == "waiting":
            self._waiting.remove(ticket)
            return
        self._running.discard(ticket)
        if outcome == "throttled":
            self.throttled += 1
            if ticket.cut == self._cuts:  # the first of the turns that ran together
                self._cuts += 1
                self._completed_full = 0
                cut = max(1, self.limit // 2)
                if cut != self.limit:
                    log.info(
                        "account %s: the model refused for load; %d turns at once, not %d",
                        self.name,
                        cut,
                        self.limit,
                    )
                self.limit = cut
        elif outcome == "completed":
            self._spent = None
            if ticket.full and ticket.cut == self._cuts and self.limit < self.ceiling:
                self._completed_full += 1
                if self._completed_full >= self.limit:
                    self._completed_full = 0
                    self.limit += 1

    # -- a spent quota -----------------------------------------------------------------------
    def spend(self, message: str, retry_after_s: float) -> None:
        """codex said the account's usage limit is reached, and when it resets."""
        self._spent = Spent(message, self.clock() + retry_after_s)
        log.warning("account %s: usage limit reached for %.0f s", self.name, retry_after_s)

    def spent_now(self) -> tuple[str, float] | None:
        """codex's words and the seconds left, while the account's quota is spent."""
        spent = self._spent
        if spent is None:
            return None
        left = spent.until - self.clock()
        if left <= 0:
            self._spent = None
            return None
        return spent.message, left

    # -- what codex reports ------------------------------------------------------------------
    def reported(self, rate_limits: dict[str, Any]) -> None:
        """codex's newest report of the account's rate limits (see ``_codex/rollout.py``)."""
        if rate_limits == self.rate_limits:
            return
        self.rate_limits = rate_limits
        if self.on_report is not None:
            self.on_report(self)

    def snapshot(self) -> dict[str, Any]:
        """The account now, as plain data (``initialize``, a status request)."""
        spent = self.spent_now()
        return {
            "account": self.name,
            "max_concurrent_turns": self.ceiling,
            "limit": self.limit,
            "running": len(self._running),
            "waiting": len(self._waiting),
            "waiting_turns": [t.turn_id for t in self._waiting],
            "throttled": self.throttled,
            "usage_limit_retry_after_s": None if spent is None else round(spent[1], 3),
            "rate_limits": self.rate_limits,
        }
