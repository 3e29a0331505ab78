"""Tool-call blocks and per-turn usage, read from codex's rollout while the turn runs.

codex writes the rollout as the turn goes (a call's output a little after it reports the item
completed, on exec and app-server alike: 0.163/0.169), so the turn polls the part of the rollout
written since it began (:class:`~.._codex.rollout.RolloutTail`, one ``stat`` when nothing changed)
whenever codex reports progress and on a short tick while a call is open, and hands each
call/output pair out once, as soon as both are there. What is left at the end (a call cut off
without output) is handed out then. The cost follows the turn, not the session.

A call is also handed out as it starts (``tool_started``): codex records the call before it runs
it (0.163: the exec engine's ``item.started`` of a command came 180 ms after the call's record),
so an engine's word that an item started is the moment to read, and the block id is the call's
own on both engines (exec's items have ids of their own, ``item_N``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .._codex.rollout import (
    Block,
    BlockCollector,
    RolloutLocator,
    RolloutRecord,
    RolloutTail,
    UsageTally,
    end_offset,
)
from ..events import Event, ToolCall, ToolResult, ToolStarted, Usage

__all__ = ["BlockWatcher", "rollout_start"]

log = logging.getLogger(__name__)


def _end(path: Path) -> int:
    try:
        return end_offset(path)
    except OSError:
        return 0


def rollout_start(locator: RolloutLocator, thread_id: str) -> tuple[Path | None, int]:
    """Where a resumed thread's rollout is and where the next turn's records will start."""
    path = locator.find(thread_id)
    return (path, _end(path)) if path is not None else (None, 0)


def started_events(blocks: list[Block]) -> list[Event]:
    return [ToolStarted(b.call_id, b.name, b.arguments, b.namespace) for b in blocks]


def block_events(blocks: list[Block]) -> list[Event]:
    out: list[Event] = []
    for block in blocks:
        out.append(ToolCall(block.call_id, block.name, block.arguments, block.namespace))
        if block.output is not None:
            out.append(ToolResult(block.call_id, block.output, block.is_error))
    return out


class BlockWatcher:
    def __init__(self, locator: RolloutLocator, rollout: Path | None, offset: int) -> None:
        self._locator = locator
        self._tail = RolloutTail(rollout, offset) if rollout is not None else None
        self._collector = BlockCollector()
        self._usage = UsageTally()
        self._thread_id: str | None = None
        self._expect = False  # codex reported an item done whose record may still be coming

    def thread(self, thread_id: str, rollout: Path | None, *, resumed: bool) -> None:
        """The run's thread. A new one's records start at 0 (its rollout may be named, or found
        later); a resumed one's where the file ended before codex began (taken now if not yet)."""
        self._thread_id = thread_id
        if not resumed:
            if self._tail is not None:
                self._tail.close()
            self._tail = RolloutTail(rollout, 0) if rollout is not None else None
        elif self._tail is None:
            path = rollout or self._locator.find(thread_id)
            if path is not None:
                self._tail = RolloutTail(path, _end(path))

    def item_done(self) -> None:
        self._expect = True

    def item_started(self) -> None:
        self._expect = True

    @property
    def wants_tick(self) -> bool:
        """Should the turn poll again soon even if codex says nothing?"""
        return self._expect or self._collector.open_calls > 0

    @property
    def turn_ended(self) -> bool:
        return self._collector.turn_ended

    def poll(self) -> list[Event]:
        """Calls that started, and blocks that completed, since the last poll."""
        self._read()
        started = started_events(self._collector.take_started())
        return started + block_events(self._collector.take_completed())

    def close(self) -> None:
        if self._tail is not None:
            self._tail.close()

    def finish(self) -> list[Event]:
        """Everything not handed out yet (the run is over)."""
        self._read()
        self.close()
        started = started_events(self._collector.take_started())
        return started + block_events(self._collector.take_rest())

    def usage(self) -> Usage | None:
        return self._usage.total()

    def context(self) -> tuple[int, int | None] | None:
        """The thread's tokens and the model's window, as the rollout last recorded them."""
        return self._usage.context

    def rate_limits(self) -> dict[str, Any] | None:
        """The account's rate limits codex recorded during the run, the newest."""
        return self._usage.rate_limits

    def _read(self) -> bool:
        if self._tail is None:
            if self._thread_id is None:
                return False
            path = self._locator.find_recent(self._thread_id)  # exec names no path
            if path is None:
                return False
            self._tail = RolloutTail(path, 0)
        records: list[RolloutRecord] = self._tail.read()
        for record in records:
            self._collector.add(record)
            self._usage.add(record)
        if records:
            self._expect = self._collector.open_calls > 0
        return bool(records)
