"""A turn's cancel: asked for once, with its reason, and the waits of the turn that it ends.

A turn waits for many things (codex's next event, its place at the account, the pause before a
throttled run is sent again); each wait ends at once when the turn is cancelled. One waiter on
the cancel serves every wait of the turn, not one per event: a turn sees many events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Literal

from ..requests import TurnError

__all__ = ["Cancel"]


class Cancel:
    def __init__(self) -> None:
        self._asked = asyncio.Event()
        self.reason = "the turn was cancelled"
        self._waiter: asyncio.Future[Any] | None = None

    def ask(self, reason: str) -> None:
        """Cancel the turn (the first reason is the one kept)."""
        if not self._asked.is_set():
            self.reason = reason
            self._asked.set()

    @property
    def asked(self) -> bool:
        return self._asked.is_set()

    def error(self) -> TurnError:
        """What a cancelled turn ends with."""
        return TurnError("cancelled", self.reason)

    def waiter(self) -> asyncio.Future[Any]:
        """Done once the turn is cancelled: the same one for every wait of the turn."""
        if self._waiter is None:
            self._waiter = asyncio.ensure_future(self._asked.wait())
        return self._waiter

    async def wait(
        self, waiting: Awaitable[Any] | None, timeout: float
    ) -> Literal["done", "cancel", "timeout"]:
        """Wait for ``waiting`` (None: only the time) unless the turn is cancelled or ``timeout``
        seconds pass first."""
        if self.asked:
            return "cancel"
        waiters: set[asyncio.Future[Any]] = {self.waiter()}
        task = asyncio.ensure_future(waiting) if waiting is not None else None
        if task is not None:
            waiters.add(task)
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=max(timeout, 0.0), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if task is not None and not task.done():
                task.cancel()
        if task is not None and task in done:
            return "done"
        return "cancel" if self.asked else "timeout"

    def close(self) -> None:
        """The turn is over: its waiter goes."""
        if self._waiter is not None:
            self._waiter.cancel()
