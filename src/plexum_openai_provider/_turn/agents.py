"""The agents a provider serves: each one's lock, running turn and queue, and the turn ids used.

One turn runs per agent at a time; a request for a busy agent is refused, steered into the
running turn or queued, as its ``when_busy`` says (:meth:`Agents.when_busy`). This table keeps
what that needs and starts an agent's next queued request when its turn ends, in a task of its own
(starting a turn claims the workspace: I/O). It knows nothing of codex: how a request starts is
the provider's, and a queued one is started by the ``start`` function it is given.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import AgentBusyError, ProviderError
from ..requests import TurnRequest, WhenBusy
from .busy import MAX_QUEUED, QueuedTurn, SteeredTurn
from .messages import plan_turn
from .runner import Turn

__all__ = ["AgentSlot", "Agents", "StartQueued"]

log = logging.getLogger(__name__)

# Turn ids seen lately, to refuse a duplicate; bounded so that a daemon's memory stays flat.
TURN_IDS_KEPT = 100_000

# How the provider starts a queued request once the agent is free: the running turn, or a
# ProviderError if the start was refused (the workspace, the bridge…).
StartQueued = Callable[["AgentSlot", QueuedTurn], Awaitable[Turn]]


@dataclass
class AgentSlot:
    """One agent: its lock (its turns and consumes never overlap), its running turn, and the
    requests waiting for it, in order."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    running: Turn | None = None
    starting: bool = False
    queue: deque[QueuedTurn] = field(default_factory=deque)

    @property
    def busy(self) -> bool:
        return self.running is not None or self.starting or bool(self.queue)

    @property
    def free(self) -> bool:
        """Nothing runs or starts: the next queued request may start."""
        return self.running is None and not self.starting


class Agents:
    """See the module docstring. ``start`` starts a queued request (see :data:`StartQueued`)."""

    def __init__(self, start: StartQueued) -> None:
        self._start = start
        self._slots: dict[str, AgentSlot] = {}
        self._queue_tasks: set[asyncio.Task[None]] = set()
        self._turn_ids: dict[str, None] = {}
        self._first_turns: set[str] = set()  # agents whose first turn has been set up
        self._owners: set[tuple[str, str]] = set()  # (agent, workspace) checked as its owner
        self.closed = False

    def slot(self, agent_id: str) -> AgentSlot:
        return self._slots.setdefault(agent_id, AgentSlot())

    def busy(self, agent_id: str) -> bool:
        slot = self._slots.get(agent_id)
        return slot is not None and slot.busy

    # -- turn ids ----------------------------------------------------------------------------
    def used(self, turn_id: str) -> bool:
        return turn_id in self._turn_ids

    def remember_turn_id(self, turn_id: str) -> None:
        self._turn_ids[turn_id] = None
        if len(self._turn_ids) > TURN_IDS_KEPT:
            del self._turn_ids[next(iter(self._turn_ids))]

    def forget_turn_id(self, turn_id: str) -> None:
        """A refused request's id: the host may use it again."""
        self._turn_ids.pop(turn_id, None)

    # -- what is known of an agent -----------------------------------------------------------
    def first_turn(self, agent_id: str) -> bool:
        """True once per agent: its first turn (told what every agent's first turn is told)."""
        if agent_id in self._first_turns:
            return False
        self._first_turns.add(agent_id)
        return True

    def owner_known(self, agent_id: str, workspace: str) -> bool:
        return (agent_id, workspace) in self._owners

    def owner_checked(self, agent_id: str, workspace: str) -> None:
        self._owners.add((agent_id, workspace))

    def others_workspaces(self, agent_id: str) -> list[str]:
        """The workspaces of the other agents known here (a confined agent may not read them)."""
        return [w for a, w in self._owners if a != agent_id]

    def describe(self, account_of: Callable[[str], str | None]) -> list[dict[str, Any]]:
        """Each agent with a running or waiting turn, by agent id, and its account (``status``)."""
        out = []
        for agent_id, slot in sorted(self._slots.items()):
            if slot.running is None and not slot.queue:
                continue
            running = slot.running.describe() if slot.running is not None else None
            queued = [q.turn_id for q in slot.queue if q.waiting]
            out.append(
                {
                    "agent": agent_id,
                    "account": account_of(agent_id),
                    "turn": running,
                    "queued": queued,
                }
            )
        return out

    # -- the running turn and the queue ------------------------------------------------------
    async def when_busy(
        self, request: TurnRequest, turn_id: str, when_busy: WhenBusy
    ) -> SteeredTurn | QueuedTurn:
        """A request for a busy agent: ``"refuse"`` raises AgentBusyError; ``"steer"`` gives the
        message to the running turn (codex's ``turn/steer``), or, where codex cannot take it,
        queues it; ``"queue"`` runs it as one of the agent's next turns, in order. A full queue
        (:data:`~.busy.MAX_QUEUED`) refuses it."""
        agent_id = request.agent.id
        slot = self.slot(agent_id)
        if when_busy == "refuse":
            raise AgentBusyError(agent_id)
        if len(slot.queue) >= MAX_QUEUED:
            raise AgentBusyError(agent_id, holder=f"a queue of {MAX_QUEUED} waiting messages")
        self.remember_turn_id(turn_id)
        running = slot.running
        if when_busy == "steer" and running is not None and not slot.queue:
            try:
                plan = plan_turn(
                    request.conversation, running.record, running.thread_id, pending=True
                )
            except BaseException:
                self.forget_turn_id(turn_id)
                raise
            if await running.steer(plan):
                log.info("turn %s of agent %r joined turn %s", turn_id, agent_id, running.turn_id)
                return SteeredTurn(turn_id, running)
        queued = QueuedTurn(turn_id, request, lambda q: self.unqueue(agent_id, q))
        self.enqueue(agent_id, queued)
        return queued

    def started(self, agent_id: str, turn: Turn, task: asyncio.Task[object]) -> None:
        """The agent's turn runs; once it ends (also when its task ends in a way its own
        ``finally`` never saw: cancelled unstarted), the agent's next request may start."""
        self.slot(agent_id).running = turn
        task.add_done_callback(lambda _: self.ended(agent_id, turn.turn_id))

    def ended(self, agent_id: str, turn_id: str) -> None:
        slot = self._slots[agent_id]
        if slot.running is not None and slot.running.turn_id == turn_id:
            slot.running = None
            if slot.queue:
                self.start_queued(agent_id)

    def enqueue(self, agent_id: str, queued: QueuedTurn) -> None:
        slot = self.slot(agent_id)
        slot.queue.append(queued)
        log.info(
            "turn %s of agent %r waits (%d in its queue)", queued.turn_id, agent_id, len(slot.queue)
        )
        if slot.free:  # the running turn ended while the steer was tried
            self.start_queued(agent_id)

    def unqueue(self, agent_id: str, queued: QueuedTurn) -> None:
        slot = self._slots.get(agent_id)
        if slot is not None and queued in slot.queue:
            slot.queue.remove(queued)

    def start_queued(self, agent_id: str) -> None:
        """Start the agent's next waiting request, in a task of its own (its claim is I/O)."""
        task = asyncio.ensure_future(self._next_queued(agent_id))
        self._queue_tasks.add(task)
        task.add_done_callback(self._queue_tasks.discard)

    async def _next_queued(self, agent_id: str) -> None:
        slot = self._slots[agent_id]
        while slot.queue and slot.free:
            queued = slot.queue.popleft()
            if not queued.waiting:
                continue
            if self.closed:
                queued.ended_unrun("cancelled", "the plugin is shutting down")
                continue
            try:
                turn = await self._start(slot, queued)
            except ProviderError as exc:  # the workspace, the bridge… as a refused start would
                queued.ended_unrun(exc.code, exc.message)
                continue
            queued.started(turn)
            return

    # -- the end -----------------------------------------------------------------------------
    async def close(self, reason: str) -> None:
        """Answer every queued request ``cancelled``, cancel every running turn and wait for them
        to end."""
        self.closed = True
        for queued in [q for slot in self._slots.values() for q in slot.queue]:
            queued.cancel(reason)
        turns = [slot.running for slot in self._slots.values() if slot.running is not None]
        for turn in turns:
            turn.cancel(reason)
        if turns or self._queue_tasks:
            await asyncio.gather(
                *(t.result() for t in turns), *self._queue_tasks, return_exceptions=True
            )
