"""A turn/start for an agent that is busy: one that joined the running turn, or one that waits.

Both look to their caller as a :class:`~.runner.Turn` does (``turn_id``, ``async for`` its events,
``result()``, ``cancel()``), so the protocol server treats every turn alike:

* :class:`SteeredTurn`: the message went into the agent's running turn (codex's ``turn/steer``);
  its result is at once ``steered``, naming that turn; the answer comes in the running turn's
  events and result.
* :class:`QueuedTurn`: the message runs as one of the agent's next turns, in order; until then it
  has no events, and a cancel takes it out of the queue (``cancelled``, having run nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..events import ErrorEvent, Event
from ..requests import TurnError, TurnRequest, TurnResult
from .runner import Turn

__all__ = ["MAX_QUEUED", "QueuedTurn", "SteeredTurn"]

# Requests waiting for one agent, at most (a host that floods an agent is told it is busy).
MAX_QUEUED = 64


class SteeredTurn:
    def __init__(self, turn_id: str, into: Turn) -> None:
        self.turn_id = turn_id
        self.into = into.turn_id
        self._result = TurnResult(turn_id, "steered", into.thread_id, into=into.turn_id)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        return
        yield  # an async generator with nothing in it

    async def result(self) -> TurnResult:
        return self._result

    def cancel(self, reason: str = "the turn was cancelled") -> None:
        return None  # it is part of the running turn now: cancel that one


class QueuedTurn:
    def __init__(
        self, turn_id: str, request: TurnRequest, on_cancel: Callable[[QueuedTurn], None]
    ) -> None:
        self.turn_id = turn_id
        self.request = request
        self._on_cancel = on_cancel
        # The turn once it runs, or the result it got without running (cancelled, refused).
        self._outcome: asyncio.Future[Turn | TurnResult] = (
            asyncio.get_running_loop().create_future()
        )

    @property
    def waiting(self) -> bool:
        return not self._outcome.done()

    def started(self, turn: Turn) -> None:
        if not self._outcome.done():
            self._outcome.set_result(turn)

    def ended_unrun(self, code: str, message: str) -> None:
        """It will not run (cancelled before its turn came, refused when it came)."""
        if not self._outcome.done():
            status: Any = "cancelled" if code == "cancelled" else "failed"
            error = TurnError(code, message)
            self._outcome.set_result(TurnResult(self.turn_id, status, None, None, error))

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        outcome = await asyncio.shield(self._outcome)
        if isinstance(outcome, Turn):
            async for event in outcome:
                yield event
        elif outcome.error is not None:
            yield ErrorEvent(outcome.error.code, outcome.error.message)

    async def result(self) -> TurnResult:
        outcome = await asyncio.shield(self._outcome)
        return await outcome.result() if isinstance(outcome, Turn) else outcome

    def cancel(self, reason: str = "the turn was cancelled") -> None:
        if self._outcome.done():
            outcome = self._outcome.result()
            if isinstance(outcome, Turn):
                outcome.cancel(reason)
            return
        self.ended_unrun("cancelled", reason)
        self._on_cancel(self)
