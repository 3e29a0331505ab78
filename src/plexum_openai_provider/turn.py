"""One turn: a ``codex exec`` run, its JSONL mapped to canonical events, its thread kept.

A :class:`Turn` is created by :meth:`CodexProvider.start_turn` and runs as a task. Its events are
read with ``async for event in turn``; :meth:`Turn.result` gives the :class:`TurnResult` once every
event has been delivered; :meth:`Turn.cancel` stops codex and ends the turn ``cancelled``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .codex.command import exec_argv
from .codex.exec_events import (
    AgentMessage,
    ErrorLine,
    ItemError,
    Malformed,
    Other,
    ThreadStarted,
    TokenCounts,
    TurnCompleted,
    TurnFailed,
    parse_exec_line,
)
from .codex.process import CodexProcess, Wake
from .codex.rollout import RolloutRecord, end_offset, read_records, tool_blocks, turn_usage
from .events import (
    ErrorEvent,
    Event,
    EventStream,
    Notice,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from .framing import OversizeLine
from .requests import TurnError, TurnRequest, TurnResult, TurnStatus
from .thread_store import is_thread_id, read_thread_id, write_thread_id

if TYPE_CHECKING:
    from .provider import CodexProvider

__all__ = ["Turn", "TurnHooks"]

log = logging.getLogger(__name__)

# codex 0.163/0.169 print this on stderr when `resume` names a UUID it has no rollout for.
_STALE_THREAD_MARKERS = ("no rollout found", "thread not found")

_RETRYABLE = {"codex_failed", "codex_exited", "timeout", "internal"}


@dataclass
class TurnHooks:
    """What the bridge plugs into a turn (all optional).

    ``config_overrides`` are added to the codex command; ``before`` runs before codex starts (e.g.
    open the tool socket); ``close`` when the turn has ended.
    """

    config_overrides: Sequence[str] = ()
    before: Callable[[], Awaitable[None]] | None = None
    close: Callable[[], Awaitable[None]] | None = None


@dataclass
class _Attempt:
    """What one codex run ended with."""

    thread_id: str | None = None
    completed: TokenCounts | None = None
    failed: str | None = None
    stale_resume: bool = False
    status: TurnStatus | None = None
    error: TurnError | None = None
    rollout: Path | None = None
    offset: int = 0


class Turn:
    def __init__(self, provider: CodexProvider, request: TurnRequest, turn_id: str) -> None:
        self.provider = provider
        self.request = request
        self.turn_id = turn_id
        self._stream = EventStream()
        self._proc: CodexProcess | None = None
        self._cancelled = False
        self._cancel_reason: str | None = None
        self.hooks = TurnHooks()
        self._task: asyncio.Task[TurnResult] | None = None

    # -- public --------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"turn {self.turn_id}")

    def __aiter__(self) -> AsyncIterator[Event]:
        return aiter(self._stream)

    async def result(self) -> TurnResult:
        assert self._task is not None
        return await asyncio.shield(self._task)

    def cancel(self, reason: str = "the turn was cancelled") -> None:
        if self._cancelled:
            return
        self._cancelled = True
        self._cancel_reason = reason
        if self._proc is not None:
            self._proc.wake()

    # -- the run -------------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Deliver an event of this turn (the bridge uses it for its notices)."""
        self._stream.put(event)

    async def _run(self) -> TurnResult:
        started = time.monotonic()
        try:
            result = await self._run_inner()
        except Exception as exc:
            log.exception("turn %s failed inside the plugin", self.turn_id)
            message = f"internal error: {type(exc).__name__}: {exc}"
            self.emit(ErrorEvent("internal", message, retryable=True))
            result = TurnResult(self.turn_id, "failed", error=TurnError("internal", message))
        finally:
            if self.hooks.close is not None:
                try:
                    await self.hooks.close()
                except Exception:
                    log.exception("turn %s: closing its hooks failed", self.turn_id)
            self.provider._turn_ended(self)
            self._stream.end()
        log.info(
            "turn %s of agent %s: %s in %.2f s (thread %s)",
            self.turn_id,
            self.request.agent.id,
            result.status,
            time.monotonic() - started,
            result.thread_id,
        )
        return result

    async def _run_inner(self) -> TurnResult:
        workspace = self.request.agent.workspace
        stored = read_thread_id(workspace)
        resume: str | None = None
        if stored is not None:
            if is_thread_id(stored):
                resume = stored
            else:
                self.emit(
                    Notice(
                        "resume_failed",
                        f"the stored thread id {stored[:80]!r} is not a codex thread id; this turn"
                        " starts a new thread and the earlier context is lost",
                    )
                )
        if self.hooks.before is not None:
            await self.hooks.before()
        async with self.provider.agent_lock(self.request.agent.id):  # waits for a consume
            attempt = await self._attempt(resume, stored)
            if attempt.stale_resume and not self._cancelled:
                self.emit(
                    Notice(
                        "resume_failed",
                        f"codex no longer knows thread {resume}; this turn starts a new thread"
                        " and the earlier context is lost",
                    )
                )
                attempt = await self._attempt(None, stored)
            return await self._finish(attempt)

    async def _attempt(self, resume: str | None, stored: str | None) -> _Attempt:
        provider, config = self.provider, self.provider.config
        attempt = _Attempt()
        if resume is not None:
            attempt.rollout = provider.locator.find(resume)
            if attempt.rollout is not None:
                attempt.offset = _end_offset(attempt.rollout)
        model = self.request.model or config.supported_models[0]
        argv = exec_argv(
            provider.binary.path,
            resume_thread=resume,
            model=config.model_arg(model),
            config_overrides=self.hooks.config_overrides,
            extra_args=config.extra_args,
        )
        if self._cancelled:
            attempt.status = "cancelled"
            attempt.error = TurnError("cancelled", self._cancel_reason or "cancelled")
            return attempt
        self._proc = proc = await CodexProcess.start(
            argv,
            cwd=str(self.request.agent.workspace),
            env=provider.env,
            stdin_data=self.request.prompt.encode("utf-8"),
        )
        if self._cancelled:  # cancel() came while codex was starting
            proc.wake()
        pending_error: str | None = None
        deadline = time.monotonic() + config.turn_timeout_s
        while True:
            timeout = min(config.idle_timeout_s, deadline - time.monotonic())
            try:
                async with asyncio.timeout(max(timeout, 0)):
                    line = await proc.lines.get()
            except TimeoutError:
                which = "turn_timeout_s" if time.monotonic() >= deadline else "idle_timeout_s"
                limit = (
                    config.turn_timeout_s if which == "turn_timeout_s" else config.idle_timeout_s
                )
                attempt.status = "failed"
                attempt.error = TurnError(
                    "timeout",
                    f"codex was stopped after {which}={limit:g} s"
                    + (f" (last codex error: {pending_error})" if pending_error else ""),
                )
                await proc.stop()
                break
            if isinstance(line, Wake):
                attempt.status = "cancelled"
                attempt.error = TurnError("cancelled", self._cancel_reason or "cancelled")
                await proc.stop()
                break
            if line is None:
                break
            if isinstance(line, OversizeLine):
                log.warning("turn %s: skipped a %d-byte codex line", self.turn_id, line.size)
                continue
            event = parse_exec_line(line)
            if pending_error is not None and not isinstance(event, (TurnFailed, ErrorLine)):
                self.emit(Notice("codex_error", pending_error))
                pending_error = None
            if isinstance(event, ThreadStarted):
                self._thread_started(event.thread_id, resume, stored, attempt)
            elif isinstance(event, AgentMessage):
                self.emit(TextDelta(event.text))
            elif isinstance(event, ItemError):
                self.emit(Notice("codex_warning", event.message))
            elif isinstance(event, ErrorLine):
                if pending_error is not None:
                    self.emit(Notice("codex_error", pending_error))
                pending_error = event.message
            elif isinstance(event, TurnCompleted):
                attempt.completed = event.usage
            elif isinstance(event, TurnFailed):
                attempt.failed = event.message
                pending_error = None
            elif isinstance(event, Malformed):
                log.warning("turn %s: skipped a codex line (%s)", self.turn_id, event.reason)
            elif isinstance(event, Other):
                log.debug("turn %s: codex %s", self.turn_id, event.kind)
        code = await proc.wait()
        if attempt.status is None and attempt.completed is None and attempt.failed is None:
            tail = proc.stderr_tail()
            if resume is not None and attempt.thread_id is None and _is_stale(tail):
                attempt.stale_resume = True
                return attempt
            attempt.status = "failed"
            detail = pending_error or _stderr_summary(tail) or "no output"
            attempt.error = TurnError(
                "codex_exited",
                f"codex exited with code {code} before the turn ended: {detail}",
            )
        elif pending_error is not None:
            self.emit(Notice("codex_error", pending_error))
        return attempt

    def _thread_started(
        self, thread_id: str, resume: str | None, stored: str | None, attempt: _Attempt
    ) -> None:
        attempt.thread_id = thread_id
        if resume is not None and thread_id != resume:
            # `codex exec resume` with an id it cannot use may start a new thread silently.
            self.emit(
                Notice(
                    "resume_failed",
                    f"codex started thread {thread_id} instead of resuming {resume}; the earlier"
                    " context is lost",
                )
            )
            attempt.rollout, attempt.offset = None, 0
        if thread_id != stored:
            write_thread_id(self.request.agent.workspace, thread_id)

    async def _finish(self, attempt: _Attempt) -> TurnResult:
        thread_id = attempt.thread_id
        if thread_id is not None and attempt.rollout is None:
            attempt.rollout = self.provider.locator.find(thread_id)
        # What this turn appended to the rollout: read once, for its tool calls and its tokens.
        records = self._appended_records(attempt)
        for block in tool_blocks(records):
            self.emit(ToolCall(block.call_id, block.name, block.arguments, block.namespace))
            if block.output is not None:
                self.emit(ToolResult(block.call_id, block.output, block.is_error))
        if attempt.completed is not None and attempt.status is None:
            usage = self._turn_usage(attempt, records)
            self.emit(usage)
            return TurnResult(self.turn_id, "completed", thread_id, usage)
        if attempt.failed is not None and attempt.status is None:
            attempt.status = "failed"
            attempt.error = TurnError("codex_failed", attempt.failed)
        assert attempt.status is not None
        error = attempt.error
        if error is not None:
            self.emit(ErrorEvent(error.code, error.message, retryable=error.code in _RETRYABLE))
        return TurnResult(self.turn_id, attempt.status, thread_id, None, error)

    def _appended_records(self, attempt: _Attempt) -> list[RolloutRecord]:
        """The records after the offset where the turn began: the cost follows the turn's size,
        not the session's."""
        if attempt.rollout is None:
            return []
        try:
            return list(read_records(attempt.rollout, attempt.offset))
        except OSError as exc:
            log.warning(
                "turn %s: cannot read the rollout %s: %s", self.turn_id, attempt.rollout, exc
            )
            return []

    def _turn_usage(self, attempt: _Attempt, records: list[RolloutRecord]) -> Usage:
        """This turn's tokens: codex prints the thread's running total, its rollout the turn's."""
        assert attempt.completed is not None
        counts = turn_usage(records)
        if counts is None:
            # No rollout record: a new thread's total is its first turn's; otherwise it is the
            # best figure there is.
            log.warning(
                "turn %s: no per-turn usage in the rollout; using codex's total", self.turn_id
            )
            counts = attempt.completed
        return Usage(
            counts.input_tokens,
            counts.cached_input_tokens,
            counts.output_tokens,
            counts.reasoning_output_tokens,
        )


def _stderr_summary(tail: str) -> str:
    """The part of codex's stderr that says what went wrong: from its last ``Error`` line on,
    without the stack backtrace; else the whole tail."""
    lines = tail.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(("Error", "error"))]
    if not starts:
        return tail
    kept = []
    for line in lines[starts[-1] :]:
        if line.strip().startswith("Stack backtrace"):
            break
        kept.append(line)
    return "\n".join(kept).strip()


def _is_stale(stderr_tail: str) -> bool:
    lowered = stderr_tail.lower()
    return any(marker in lowered for marker in _STALE_THREAD_MARKERS)


def _end_offset(path: Path) -> int:
    try:
        return end_offset(path)
    except OSError:
        return 0
