"""One turn, driven against the codex seam.

A :class:`Turn` gets everything it needs as values (:class:`TurnSetup`: the engine, the request,
the limits, the thread record, the bridge's hooks, the agent's lock) and never reaches back into
whoever made it. It runs as a task: its events are read with ``async for event in turn``;
:meth:`Turn.result` gives the :class:`~..requests.TurnResult` once every event has been delivered;
:meth:`Turn.cancel` stops codex and ends the turn ``cancelled``.

What a turn does, in order: report a stored thread id it cannot use; wait for its place at the
account (:mod:`.turn_admission`); start the bridge; wait for the agent's lock (a consume may be
rewriting); run codex, resuming the stored thread; if codex no longer knows that thread, say so and
run again in a new one; map codex's events, keep the thread id, hand out tool-call blocks as they
complete; send a run codex failed for the account's load again (the account says when); end on
codex's terminal event, a deadline (``idle_timeout_s`` without a word from codex while nothing of
the turn runs, ``turn_timeout_s`` in all, ``unreachable_timeout_s`` of codex reconnecting to a
model that does not answer) or a cancel. codex's reconnect notices are not a word for
``idle_timeout_s``: it says them without end while it waits for the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .._codex.command import McpServerSpec
from .._codex.failures import classify, is_reconnect
from .._codex.policy import UNCONFINED, AgentPolicy
from .._codex.rollout import RolloutLocator
from .._engine import seam
from .._io.logs import log_context
from ..errors import ProviderError
from ..events import (
    ContextWindow,
    ErrorEvent,
    Event,
    EventStream,
    Notice,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolOutputDelta,
    ToolStarted,
    Usage,
)
from ..requests import Timing, TurnError, TurnRequest, TurnResult, TurnStatus
from ..telemetry import TurnTrace
from .admission import Ticket, backoff_s
from .blocks import BlockWatcher, rollout_start
from .cancel import Cancel
from .delivery import Delivery, save_delivery
from .mapping import AttemptMapper, AttemptState
from .messages import TurnPlan, plan_turn
from .turn_admission import TurnAdmission
from .workspace import WorkspaceClaim

__all__ = ["BridgeHooks", "Turn", "TurnSetup"]

log = logging.getLogger(__name__)

# Failures the same turn, sent again, can get past (codex's own failures are classified by
# _codex/failures.py): codex died, a deadline passed, the plugin failed inside.
RETRYABLE = frozenset({"codex_failed", "codex_exited", "timeout", "model_unreachable", "internal"})
# How often a turn reads the rollout while a tool call is open (codex says nothing meanwhile), and
# otherwise (a call codex reports no item for, such as code mode's, is still seen while it runs).
BLOCK_TICK_S = 0.05
QUIET_TICK_S = 0.25
# After codex reports the turn's end, how long its end-of-turn record may take to be written.
ROLLOUT_LAG_S = 1.0
# After a stop, how long codex may take to end the run before the turn stops waiting for it.
STOP_DRAIN_S = 15.0


class BridgeHooks(Protocol):
    """What the host-tool bridge gives a turn: the MCP server for codex, and its two moments."""

    @property
    def mcp_server(self) -> McpServerSpec | None: ...

    @property
    def start(self) -> Callable[[], Awaitable[None]]:
        """Before codex starts (listen for the relay)."""
        ...

    @property
    def end(self) -> Callable[[], Awaitable[None]]:
        """When the turn is over."""
        ...


@dataclass(frozen=True)
class TurnSetup:
    request: TurnRequest
    turn_id: str
    engine: seam.Engine
    locator: RolloutLocator
    model: str | None  # codex's model name (None: codex's default)
    turn_timeout_s: float
    idle_timeout_s: float
    agent_lock: asyncio.Lock
    bridge: BridgeHooks
    claim: WorkspaceClaim  # the workspace's lock, stored thread and record; released here
    plan: TurnPlan  # what of the host's conversation reaches codex (see .messages)
    policy: AgentPolicy = UNCONFINED  # the agent's sandbox and codex features
    # How long codex may go on reconnecting to the model (from its first reconnect notice since
    # the model last answered) before the turn fails model_unreachable.
    unreachable_timeout_s: float = 120.0
    notices: tuple[Notice, ...] = ()  # sent first (e.g. the engine fell back)
    # Its span and figures (telemetry; a no-op unless OpenTelemetry is configured).
    trace: TurnTrace = field(default_factory=TurnTrace)
    effort: str | None = None  # the model's reasoning effort (None: its default)
    # Called once the turn is over, before its result is delivered (whoever registered the turn
    # as running unregisters it here, so that a caller who has the result finds the agent free).
    on_end: Callable[[], None] | None = None
    # The turn's place at its account (None: admitted, nothing to report); released here.
    ticket: Ticket | None = None
    max_retries: int = 0  # times a throttled turn is sent again, at most
    backoff: Callable[[int, float | None], float] = backoff_s  # the pause before the n-th


@dataclass
class _Attempt:
    """How one codex run ended, with what the mapper saw."""

    state: AttemptState = field(default_factory=AttemptState)
    status: TurnStatus | None = None
    error: TurnError | None = None
    exit: seam.RunExit | None = None
    watcher: BlockWatcher | None = None
    mapper: AttemptMapper | None = None
    answered: bool = False  # the delivery record's "answered" is on its way


class Turn:
    def __init__(self, setup: TurnSetup) -> None:
        self._setup = setup
        self.turn_id = setup.turn_id
        self.request = setup.request
        self._stream = EventStream()
        self._cancel = Cancel()
        self._task: asyncio.Task[TurnResult] | None = None
        # What the thread was given: the plan grows with each message steered into the turn.
        self._plan = setup.plan
        self.record: Delivery | None = setup.claim.delivery
        # The delivery record's writes, in order (one after another, whatever the attempt),
        # beside the turn rather than in its way: "taken" from codex's start of the turn on,
        # while the model answers (codex has the input already; a crash before the write ends
        # gives codex the message again, as before), "answered" from codex's end of the turn
        # on, beside codex's exit and app-server's rollout lag. Each is an fsync (0.7-9 ms)
        # that used to hold up the turn's next event or its result.
        self._recording: asyncio.Future[None] | None = None
        self._run_now: seam.CodexRun | None = None  # the codex run going on, and what it said
        self._state: AttemptState | None = None
        # What the turn is doing, for whoever asks (status): since when, and now.
        self.started_at = time.time()
        self._started = time.monotonic()
        self._first_token: float | None = None
        self.activity = "starting"
        self.last_output = ""  # the last line a running command printed
        self._wanted = setup.request.events
        self._thread = setup.claim.stored.thread_id  # the thread recorded for the agent
        self._deadline = time.monotonic() + setup.turn_timeout_s
        # Its place at the account: waited for, taken again after a 429, freed at the end.
        self._account = TurnAdmission(
            setup.ticket,
            turn_id=self.turn_id,
            cancel=self._cancel,
            emit=self._emit,
            doing=self._set_activity,
            turn_timeout_s=setup.turn_timeout_s,
            max_retries=setup.max_retries,
            backoff=setup.backoff,
        )

    def _start(self) -> asyncio.Task[TurnResult]:
        self._task = asyncio.create_task(self._run(), name=f"turn {self.turn_id}")
        return self._task

    def __aiter__(self) -> AsyncIterator[Event]:
        return aiter(self._stream)

    async def result(self) -> TurnResult:
        assert self._task is not None
        return await asyncio.shield(self._task)

    def cancel(self, reason: str = "the turn was cancelled") -> None:
        self._cancel.ask(reason)

    def describe(self) -> dict[str, Any]:
        """What the turn is doing now (for ``status``)."""
        return {
            "turn_id": self.turn_id,
            "thread_id": self.thread_id,
            "since": self.started_at,
            "running_s": round(time.monotonic() - self._started, 1),
            "activity": self.activity,
            "last_output": self.last_output or None,
        }

    @property
    def cancelled(self) -> bool:
        return self._cancel.asked

    @property
    def thread_id(self) -> str | None:
        """The thread the turn runs on (once codex has said), else the stored one."""
        if self._state is not None and self._state.thread_id is not None:
            return self._state.thread_id
        return self._setup.claim.stored.thread_id

    async def steer(self, plan: TurnPlan) -> bool:
        """Give the running turn the messages of ``plan`` it does not have yet (a request that
        came while it runs, planned against :attr:`record`); True if codex took them into this
        turn (or there was nothing new), False if it cannot (the turn has not taken its own
        input yet, has ended or is ending, or the engine takes no input mid-turn)."""
        run, state = self._run_now, self._state
        if run is None or state is None or not state.input_taken or state.ended or self.cancelled:
            return False
        given = plan.resumed
        if given.messages == 0:
            return True
        if not await run.steer(given.text, given.images):
            return False
        self._plan = plan
        await self._record(state, open_=True)
        return True

    # -- the run -----------------------------------------------------------------------------
    def _emit(self, events: Sequence[Event]) -> None:
        for event in events:
            self._note(event)
            self._setup.trace.event(event)
            if event.type in self._wanted:
                self._stream.put(event)

    def _note(self, event: Event) -> None:
        """What the turn is doing now, from what it is about to say."""
        said = isinstance(event, (TextDelta, ReasoningDelta, ToolStarted))
        if said and self._first_token is None:
            self._first_token = time.monotonic()
        if isinstance(event, ToolStarted):
            self.activity = _doing(event)
            self.last_output = ""
        elif isinstance(event, ToolOutputDelta):
            lines = [line for line in event.text.splitlines() if line.strip()]
            if lines:
                self.last_output = lines[-1][:200]
        elif isinstance(event, ToolCall):
            self.activity = "thinking"
        elif isinstance(event, TextDelta):
            self.activity = "writing"
        elif isinstance(event, ReasoningDelta):
            self.activity = "reasoning"

    def _set_activity(self, activity: str) -> None:
        self.activity = activity

    async def _run(self) -> TurnResult:
        started = self._started
        setup = self._setup
        log_context(agent=setup.request.agent.id, turn=self.turn_id)
        result: TurnResult | None = None
        try:
            result = await self._drive()
        except ProviderError as exc:
            result = self._failed(exc.code, exc.message)
        except Exception as exc:
            log.exception("turn %s failed inside the plugin", self.turn_id)
            result = self._failed("internal", f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._account.end(result, ran=self._run_now is not None)
            try:
                await setup.bridge.end()
            except Exception:
                log.exception("turn %s: ending its bridge failed", self.turn_id)
            setup.claim.release()
            self._cancel.close()
            if setup.on_end is not None:
                setup.on_end()
            self._stream.end()
        result = dataclasses.replace(result, timing=self._timing())
        error = result.error.code if result.error is not None else None
        setup.trace.end(result.status, result.usage, error)
        log.info(
            "turn %s of agent %s: %s in %.2f s (thread %s)",
            self.turn_id,
            setup.request.agent.id,
            result.status,
            time.monotonic() - started,
            result.thread_id,
        )
        return result

    def _timing(self) -> Timing:
        def ms(since: float, until: float | None) -> int | None:
            return None if until is None else round((until - since) * 1000)

        done = self._state.done if self._state is not None else None
        return Timing(
            ms(self._started, time.monotonic()) or 0,
            ms(self._started, self._first_token),
            done.duration_ms if done is not None else None,
        )

    def _failed(self, code: str, message: str, thread_id: str | None = None) -> TurnResult:
        error = TurnError(code, message, code in RETRYABLE)
        self._emit([error_event(error)])
        return TurnResult(self.turn_id, "failed", thread_id, error=error)

    def _unrun(self, error: TurnError) -> TurnResult:
        """The turn ends before codex ran."""
        self._emit([error_event(error)])
        status: TurnStatus = "cancelled" if error.code == "cancelled" else "failed"
        return TurnResult(self.turn_id, status, self._thread, error=error)

    async def _drive(self) -> TurnResult:
        setup = self._setup
        self._deadline = time.monotonic() + setup.turn_timeout_s  # the wait for the account counts
        self._emit(setup.notices)
        stored = setup.claim.stored
        if stored.problem is not None:
            self._emit(
                [
                    Notice(
                        "resume_failed",
                        f"{stored.problem}; this turn starts a new thread and the earlier context"
                        " is lost",
                    )
                ]
            )
        refused = await self._account.wait(self._deadline)
        if refused is not None:
            return self._unrun(refused)
        await setup.bridge.start()
        waiting = setup.agent_lock.locked()  # a consume of this agent runs
        self.activity = "waiting for the agent's lock" if waiting else "starting"
        with setup.trace.span("waiting") if waiting else contextlib.nullcontext():
            await setup.agent_lock.acquire()
        try:
            self.activity = "starting codex"
            try:
                resume = stored.thread_id
                retries = 0
                while True:
                    attempt = await self._attempt(resume)
                    if attempt.state.resume_failed is not None and not self.cancelled:
                        if attempt.watcher is not None:
                            attempt.watcher.close()
                        self._emit(
                            [
                                Notice(
                                    "resume_failed",
                                    f"codex no longer knows thread {resume}; this turn starts a"
                                    " new thread and the earlier context is lost",
                                )
                            ]
                        )
                        attempt = await self._attempt(None)
                    delay = (
                        self._account.retry_delay(attempt.state, retries + 1, self._deadline)
                        if attempt.status is None
                        else None
                    )
                    if delay is None:
                        return await self._finish(attempt)
                    retries += 1
                    if not await self._again(attempt, retries, delay):
                        return await self._finish(attempt)
                    resume = attempt.state.thread_id or resume
            finally:
                # Inside the lock: a consume waiting for it finds the workspace free.
                setup.claim.release()
        finally:
            setup.agent_lock.release()

    async def _again(self, attempt: _Attempt, retry: int, delay: float) -> bool:
        """Before a throttled run is sent again: its blocks so far, then its account's pause and
        place (see .turn_admission). False if it is not sent again after all (the attempt then
        says why: cancelled, the deadline, a spent quota)."""
        if attempt.watcher is not None:
            await self._last_blocks(attempt.watcher, attempt.mapper)
            attempt.watcher = None
        error = await self._account.again(attempt.state, retry, delay, self._deadline)
        if error is not None:
            attempt.status = "cancelled" if error.code == "cancelled" else "failed"
            attempt.error = error
            return False
        if attempt.state.thread_id is not None:
            # What codex took stays taken (see .delivery): the turn is sent again with what the
            # thread has not had, which, once codex took the messages, is none of them.
            self._plan = plan_turn(self.request.conversation, self.record, attempt.state.thread_id)
        return True

    async def _attempt(self, resume: str | None) -> _Attempt:
        setup = self._setup
        attempt = _Attempt()
        if self.cancelled:
            attempt.status = "cancelled"
            attempt.error = self._cancel.error()
            return attempt
        rollout, offset = (None, 0)
        if resume is not None:
            rollout, offset = await asyncio.to_thread(rollout_start, setup.locator, resume)
        watcher = attempt.watcher = BlockWatcher(setup.locator, rollout, offset)
        plan = self._plan  # with what was steered into it, and what codex took before a retry
        given = plan.input(resuming=resume is not None)
        history = plan.history if resume is None else ()
        if history:
            self._emit(
                [
                    Notice(
                        "history_replayed",
                        f"a new codex thread: the {len(history)} earlier messages of the"
                        " conversation were given to it as the conversation so far",
                    )
                ]
            )
        spec = seam.RunSpec(
            workspace=setup.request.agent.workspace,
            prompt=given.text,
            resume=resume,
            model=setup.model,
            effort=setup.effort,
            mcp_server=setup.bridge.mcp_server,
            policy=setup.policy,
            images=given.images,
            instructions=plan.instructions,
            instructions_update=plan.instructions_update if resume is not None else None,
            history=history,
            traceparent=setup.trace.traceparent,
        )
        run = await setup.engine.start_run(spec)
        mapper = attempt.mapper = AttemptMapper(resume)
        self._run_now, self._state = run, mapper.state
        deadline = self._deadline
        idle_since = time.monotonic()
        stop_started: float | None = None
        # Items running now (a command, a tool call): codex says nothing until one completes
        # (exec prints no output of a command), so the turn is not idle while one runs.
        running: set[str] = set()
        # Since when codex has been reconnecting to the model (its first reconnect notice since
        # anything else), and what it last said.
        reconnecting_since: float | None = None
        reconnect_said = ""
        while True:
            now = time.monotonic()
            if stop_started is None:
                idle_limit = deadline if running else idle_since + setup.idle_timeout_s
                if reconnecting_since is not None:
                    idle_limit = min(idle_limit, reconnecting_since + setup.unreachable_timeout_s)
                limit = min(idle_limit, deadline)
                wait = max(limit - now, 0.0)
            else:
                limit = stop_started + STOP_DRAIN_S
                wait = max(limit - now, 0.0)
            wait = min(wait, BLOCK_TICK_S if watcher.wants_tick else QUIET_TICK_S)
            kind, event = await self._next(run, wait, watch_cancel=stop_started is None)
            if kind == "cancel":
                attempt.status = "cancelled"
                attempt.error = self._cancel.error()
                stop_started = time.monotonic()
                await run.stop()
                continue
            if kind == "timeout":
                self._emit(mapper.blocks(watcher.poll()))
                if time.monotonic() < limit:
                    continue  # only the block tick
                if stop_started is not None:
                    log.warning(
                        "turn %s: codex did not end %g s after a stop", self.turn_id, STOP_DRAIN_S
                    )
                    break
                attempt.status = "failed"
                attempt.error = self._deadline_error(
                    deadline,
                    None if reconnecting_since is None else (reconnecting_since, reconnect_said),
                    mapper,
                )
                stop_started = time.monotonic()
                await run.stop()
                continue
            if event is None:
                break
            if isinstance(event, (seam.CodexError, seam.CodexWarning)) and is_reconnect(
                event.message
            ):
                reconnect_said = event.message
                if reconnecting_since is None:
                    reconnecting_since = time.monotonic()
            else:
                idle_since = time.monotonic()
                if not isinstance(event, seam.Other):
                    reconnecting_since = None
            if isinstance(event, seam.ItemStarted):
                # codex recorded the call before it started it: its tool_started, now.
                watcher.item_started()
                self._emit(mapper.blocks(watcher.poll()))
                mapper.item_started(event)
            elif watcher.wants_tick:
                # Blocks codex recorded before this event come first: a call's output is in the
                # rollout before the model's next words are.
                self._emit(mapper.blocks(watcher.poll()))
            self._emit(mapper.feed(event))
            if (
                isinstance(event, seam.TurnDone)
                and mapper.state.input_taken
                and not attempt.answered
            ):
                attempt.answered = True
                self._record_beside(mapper.state, open_=False)
            if isinstance(event, seam.ThreadStarted):
                await self._thread_started(event, mapper.state, watcher)
            elif isinstance(event, seam.TurnStarted):
                self._record_beside(mapper.state, open_=True)
            elif isinstance(event, seam.ItemStarted):
                running.add(event.item_id)
            elif isinstance(event, seam.ItemDone):
                running.discard(event.item_id)
                watcher.item_done()
            elif isinstance(event, seam.Unparsed):
                log.warning("turn %s: %s", self.turn_id, event.reason)
            elif isinstance(event, seam.Other):
                log.debug("turn %s: codex %s", self.turn_id, event.kind)
        attempt.exit = await run.finish()
        attempt.state = mapper.state
        self._emit(mapper.close())
        if (
            setup.engine.rollout_lags
            and mapper.state.ended
            and attempt.status is None
            and mapper.state.thread_id is not None
        ):
            await self._await_turn_record(watcher, mapper)
        return attempt

    def _deadline_error(
        self, deadline: float, reconnecting: tuple[float, str] | None, mapper: AttemptMapper
    ) -> TurnError:
        """Why a deadline stopped codex: the turn ran too long, codex kept reconnecting to a model
        it could not reach (``reconnecting``: since when, and what it last said), or nothing
        happened."""
        setup = self._setup
        now = time.monotonic()
        if now < deadline and reconnecting is not None:
            since, said = reconnecting
            if now >= since + setup.unreachable_timeout_s:
                which = f"unreachable_timeout_s={setup.unreachable_timeout_s:g} s of reconnecting"
            else:
                which = f"idle_timeout_s={setup.idle_timeout_s:g} s without an answer"
            return TurnError(
                "model_unreachable",
                f"codex could not reach the model; it was stopped after {which} (codex's last"
                f" message: {said})",
            )
        which = "turn_timeout_s" if now >= deadline else "idle_timeout_s"
        value = setup.turn_timeout_s if which == "turn_timeout_s" else setup.idle_timeout_s
        pending = mapper.state.pending_error or (reconnecting[1] if reconnecting else None)
        return TurnError(
            "timeout",
            f"codex was stopped after {which}={value:g} s"
            + (f" (last codex error: {pending})" if pending else ""),
        )

    async def _next(
        self, run: seam.CodexRun, wait: float, *, watch_cancel: bool
    ) -> tuple[Literal["event", "timeout", "cancel"], seam.CodexEvent | None]:
        """The run's next event, unless the turn is cancelled or ``wait`` passes first."""
        if watch_cancel and self._cancel.asked:
            return "cancel", None
        ready = run.ready()  # most of a turn's events are at hand already: no task, no wait
        if ready is not seam.NOT_YET:
            return "event", ready
        get = asyncio.ensure_future(run.next_event())
        waiters: set[asyncio.Future[Any]] = {get}
        if watch_cancel:
            waiters.add(self._cancel.waiter())
        done, _ = await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
        if get in done:
            return "event", get.result()
        get.cancel()  # a queue's get loses nothing when cancelled
        if watch_cancel and self._cancel.asked:
            return "cancel", None
        return "timeout", None

    async def _thread_started(
        self, event: seam.ThreadStarted, state: AttemptState, watcher: BlockWatcher
    ) -> None:
        setup = self._setup
        stored = self._thread
        resumed = event.thread_id == stored and not state.new_thread
        await asyncio.to_thread(watcher.thread, event.thread_id, event.rollout, resumed=resumed)
        self._thread = event.thread_id
        if event.thread_id != stored:
            try:
                await asyncio.to_thread(setup.claim.record.save, event.thread_id)
            except OSError as exc:
                # Reserved before codex ran when a new thread was expected; this is a resumed
                # thread codex replaced, in a workspace that can no longer be written.
                self._emit(
                    [
                        Notice(
                            "thread_not_recorded",
                            f"thread {event.thread_id} could not be recorded in"
                            f" {setup.claim.record.path} ({exc.strerror or exc}); the next turn"
                            " cannot resume it",
                        )
                    ]
                )

    def _record_beside(self, state: AttemptState, *, open_: bool) -> None:
        """:meth:`_record` after the turn's earlier writes, without waiting for it (the turn
        waits for every write before its result)."""
        record = self._delivery(state, open_=open_)
        if record is None:
            return
        before = self._recording
        if not record.open and (before is None or before.done()):
            # The closing record has no fsync (see .delivery): a few calls, written here rather
            # than after a worker thread's hop, which waits for a core while codex ends its turn.
            self._save_now(record)
            return

        async def write() -> None:
            if before is not None:
                await before
            await self._save(record)

        self._recording = asyncio.ensure_future(write())

    async def _record(self, state: AttemptState, *, open_: bool) -> None:
        """What the thread now has (its input; whether the turn that took it has answered), so
        that no message is given to it twice (see .delivery)."""
        record = self._delivery(state, open_=open_)
        if record is not None:
            if self._recording is not None:
                await self._recording  # the earlier writes land first
            await self._save(record)

    def _delivery(self, state: AttemptState, *, open_: bool) -> Delivery | None:
        """The record as of now (a steer planned meanwhile sees it at once)."""
        if state.thread_id is None:
            return None
        self.record = self._plan.record(state.thread_id, open_=open_)
        return self.record

    async def _save(self, record: Delivery) -> None:
        try:
            await asyncio.to_thread(save_delivery, self._setup.claim.records, record)
        except OSError as exc:
            self._not_saved(exc)

    def _save_now(self, record: Delivery) -> None:
        try:
            save_delivery(self._setup.claim.records, record)
        except OSError as exc:
            self._not_saved(exc)

    def _not_saved(self, exc: OSError) -> None:
        log.warning("turn %s: the delivery record was not written: %s", self.turn_id, exc)

    async def _await_turn_record(self, watcher: BlockWatcher, mapper: AttemptMapper) -> None:
        deadline = time.monotonic() + ROLLOUT_LAG_S
        while True:
            self._emit(mapper.blocks(watcher.poll()))
            if watcher.turn_ended or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.02)

    async def _finish(self, attempt: _Attempt) -> TurnResult:
        state = attempt.state
        thread_id = state.thread_id
        if attempt.watcher is not None:
            await self._last_blocks(attempt.watcher, attempt.mapper)
        if self._recording is not None:
            await self._recording
        if attempt.status is None:
            if state.done is not None:
                usage = self._usage(state.done, attempt.watcher)
                if state.input_taken and not attempt.answered:
                    await self._record(state, open_=False)
                self._emit([*self._context(state, attempt.watcher), usage])
                return TurnResult(self.turn_id, "completed", thread_id, usage)
            if state.failed is not None:
                attempt.status = "failed"
                failure = classify(state.failed, state.failed_info)
                attempt.error = TurnError(
                    failure.code, failure.message, failure.retryable, False, failure.retry_after_s
                )
            elif state.interrupted is not None:
                attempt.status = "failed"
                attempt.error = TurnError(
                    "codex_failed", f"codex interrupted the turn: {state.interrupted}"
                )
            else:
                exit_ = attempt.exit or seam.RunExit(None, "")
                detail = state.pending_error or exit_.detail or "no output"
                code = f"code {exit_.exit_code}" if exit_.exit_code is not None else "no code"
                attempt.status = "failed"
                attempt.error = TurnError(
                    "codex_exited",
                    f"codex ended ({code}) before the turn ended: {detail}",
                )
        error = attempt.error
        if error is not None:
            error = dataclasses.replace(
                error,
                retryable=error.retryable or error.code in RETRYABLE,
                delivered=state.input_taken,
            )
            self._emit([error_event(error)])
        return TurnResult(self.turn_id, attempt.status, thread_id, None, error)

    async def _last_blocks(self, watcher: BlockWatcher, mapper: AttemptMapper | None) -> None:
        """The run's blocks not yet handed out; what codex recorded of the account's rate limits,
        to the account."""
        rest = await asyncio.to_thread(watcher.finish)
        self._emit(mapper.blocks(rest) if mapper is not None else rest)
        self._account.report(watcher.rate_limits())

    def _context(self, state: AttemptState, watcher: BlockWatcher | None) -> list[Event]:
        """How full the thread is now: the engine's word (app-server), else the rollout's."""
        if state.context is not None:
            tokens, window = state.context.tokens, state.context.window
        else:
            recorded = watcher.context() if watcher is not None else None
            if recorded is None:
                return []
            tokens, window = recorded
        used = round(tokens / window, 4) if window else None
        return [ContextWindow(tokens, window, used)]

    def _usage(self, done: seam.TurnDone, watcher: BlockWatcher | None) -> Usage:
        """This turn's tokens: the engine's own per-turn figure, else the rollout's; codex exec
        prints only the thread's running total, the last resort."""
        if done.scope == "turn" and done.usage is not None:
            return done.usage
        recorded = watcher.usage() if watcher is not None else None
        if recorded is not None:
            return recorded
        log.warning("turn %s: no per-turn usage in the rollout; using codex's total", self.turn_id)
        return done.usage or Usage()


def _doing(call: ToolStarted) -> str:
    """A call as ``status`` shows it: a shell command as ``$ command``, else name and arguments."""
    try:
        args = json.loads(call.arguments)
    except ValueError:
        args = None
    if isinstance(args, dict) and isinstance(args.get("cmd"), str):
        return ("$ " + " ".join(args["cmd"].split()))[:200]
    return f"{call.name} {call.arguments}"[:200]


def error_event(error: TurnError) -> ErrorEvent:
    return ErrorEvent(
        error.code, error.message, error.retryable, error.delivered, error.retry_after_s
    )


def start_turn(setup: TurnSetup) -> tuple[Turn, asyncio.Task[TurnResult]]:
    """Make the turn and start its task (the caller registers it and watches the task)."""
    turn = Turn(setup)
    return turn, turn._start()
