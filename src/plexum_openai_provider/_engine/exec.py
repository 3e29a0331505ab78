"""The exec engine: one ``codex exec`` process per turn (the way codex is driven from scripts).

:class:`ExecRun` turns a process's JSONL into :data:`~.seam.CodexEvent` values. It reads from any
:class:`LineSource` (the real :class:`~.._codex.process.CodexProcess`, or recorded lines in
:mod:`plexum_openai_provider.testing.fake_codex`), so the mapping is the same in both.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from .._codex import exec_events as ex
from .._codex.command import exec_argv
from .._codex.consume import append_response_items
from .._codex.home import codex_home
from .._codex.limits import Limiter
from .._codex.policy import prepare_workspace
from .._codex.process import CodexProcess
from .._codex.records import message_item
from .._codex.rollout import RolloutLocator
from .._codex.sub_agents import SubAgentMessage, sub_agent_work
from .._codex.writer_lock import thread_writer_lock
from .._io.framing import OversizeLine
from ..conversation import ImagePart
from ..errors import CodexProcessError, ProviderError
from .seam import (
    NOT_YET,
    CodexError,
    CodexEvent,
    CodexWarning,
    FilesChanged,
    HistoryEntry,
    ItemDone,
    ItemStarted,
    Other,
    PlanUpdated,
    Ready,
    Reasoning,
    ResumeFailed,
    RunExit,
    RunSpec,
    Text,
    ThreadStarted,
    TurnDone,
    TurnFailed,
    TurnStarted,
    Unparsed,
)

__all__ = [
    "ExecEngine",
    "ExecRun",
    "LineSource",
    "exec_event",
    "exec_events",
    "recap",
    "stderr_summary",
]

log = logging.getLogger(__name__)

# codex 0.163/0.169 print this on stderr when `resume` names a UUID it has no rollout for.
STALE_THREAD_MARKERS = ("no rollout found", "thread not found")


class LineSource(Protocol):
    """What :class:`ExecRun` needs of a process: stdout lines, then how it exited."""

    lines: asyncio.Queue[bytes | OversizeLine | None]

    async def wait(self) -> int: ...
    async def stop(self) -> int: ...
    def stderr_tail(self, limit: int = 2000) -> str: ...


def exec_events(event: ex.ExecEvent) -> list[CodexEvent]:
    """One parsed exec JSONL line as seam events."""
    if isinstance(event, ex.FilesChanged):
        return [FilesChanged(event.item_id, event.changes), ItemDone(event.item_id, "file_change")]
    return [exec_event(event)]


def exec_event(event: ex.ExecEvent) -> CodexEvent:
    """One parsed exec JSONL line as a seam event (see :func:`exec_events`)."""
    if isinstance(event, ex.ThreadStarted):
        return ThreadStarted(event.thread_id)
    if isinstance(event, ex.TurnStarted):
        return TurnStarted()
    if isinstance(event, ex.AgentMessage):
        return Text(event.text, event.item_id)  # exec does not print a message's phase
    if isinstance(event, ex.ItemError):
        return CodexWarning(event.message)
    if isinstance(event, ex.ItemStarted):
        return ItemStarted(event.item_id, event.item_type)
    if isinstance(event, ex.ItemCompleted):
        return ItemDone(event.item_id, event.item_type)
    if isinstance(event, ex.Reasoning):
        return Reasoning(event.item_id, event.text)
    if isinstance(event, ex.TodoList):
        return PlanUpdated(event.steps)
    if isinstance(event, ex.TurnCompleted):
        # codex exec prints the thread's running total, not the turn's (0.163/0.169).
        return TurnDone(event.usage, "thread")
    if isinstance(event, ex.TurnFailed):
        return TurnFailed(event.message)
    if isinstance(event, ex.ErrorLine):
        return CodexError(event.message)
    if isinstance(event, ex.Malformed):
        return Unparsed(event.reason)
    if isinstance(event, ex.FilesChanged):
        return FilesChanged(event.item_id, event.changes)
    return Other(event.kind)


def stderr_summary(tail: str) -> str:
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


class ExecRun:
    def __init__(
        self,
        source: LineSource,
        *,
        resume: str | None,
        first: Sequence[CodexEvent] = (),
        scratch: Path | None = None,
        sub_agents_in: Path | None = None,
    ) -> None:
        """``first``: events to report before codex's (what the engine found before it started
        codex); ``scratch``: a folder of this run's own, removed when it is over;
        ``sub_agents_in``: the CODEX_HOME whose rollouts hold what the run's codex sub-agents
        did (None: sub-agents are off), reported when codex's output ends."""
        self._source = source
        self._resume = resume
        self._first = list(first)
        self._scratch = scratch
        self._sub_agents_in = sub_agents_in
        self._started = time.time()
        self._thread: str | None = None
        self._thread_seen = False
        self._exit: RunExit | None = None
        self._output_ended = False
        self._done = False

    def _cleanup(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def ready(self) -> Ready:
        # What a line gave beyond its first event; a line itself is parsed by next_event.
        return self._first.pop(0) if self._first else NOT_YET

    async def next_event(self) -> CodexEvent | None:
        # Cancel-safe, as the seam asks: a caller that stops waiting loses no line, and the
        # exit (which decides a stale resume) is awaited again until it has been seen.
        if self._first:
            return self._first.pop(0)
        if self._done:
            return None
        if not self._output_ended:
            line = await self._source.lines.get()
            if line is not None:
                if isinstance(line, OversizeLine):
                    return Unparsed(f"a {line.size}-byte codex line was skipped")
                event, *more = exec_events(ex.parse_exec_line(line))
                self._first.extend(more)
                if isinstance(event, ThreadStarted):
                    self._thread_seen = True
                    self._thread = event.thread_id
                return event
            self._output_ended = True
            if self._sub_agents_in is not None and self._thread is not None:
                self._first = await self._sub_agent_events(self._sub_agents_in, self._thread)
                if self._first:
                    return self._first.pop(0)
        code = await self._source.wait()
        self._done = True
        self._cleanup()
        tail = self._source.stderr_tail()
        self._exit = RunExit(code, stderr_summary(tail))
        lowered = tail.lower()
        if (
            self._resume is not None
            and not self._thread_seen
            and any(marker in lowered for marker in STALE_THREAD_MARKERS)
        ):
            return ResumeFailed(stderr_summary(tail))
        return None

    async def _sub_agent_events(self, codex_home: Path, thread_id: str) -> list[CodexEvent]:
        """What the run's codex sub-agents wrote and called (codex exec does not report it)."""
        try:
            work = await asyncio.to_thread(sub_agent_work, codex_home, thread_id, self._started)
        except OSError as exc:
            return [CodexWarning(f"what the sub-agents did could not be read: {exc}")]
        return [
            Text(w.text, w.item_id, None, w.sub_agent)
            if isinstance(w, SubAgentMessage)
            else w  # a SubAgentTool already
            for w in work
        ]

    async def stop(self) -> None:
        await self._source.stop()

    async def steer(self, prompt: str, images: tuple[ImagePart, ...]) -> bool:
        return False  # codex exec reads its input once, from stdin

    async def finish(self) -> RunExit:
        if self._exit is None:
            code = await self._source.wait()
            self._exit = RunExit(code, stderr_summary(self._source.stderr_tail()))
        self._cleanup()
        return self._exit

    def stderr_tail(self) -> str:
        return self._source.stderr_tail()


def recap(history: Sequence[HistoryEntry]) -> str:
    """A new thread's conversation so far, as text before the turn's input (``codex exec`` takes
    no history items)."""
    lines = [f"{'assistant (you)' if e.role == 'assistant' else 'user'}: {e.text}" for e in history]
    return (
        "[The conversation so far, from the host's record (this codex thread is new):]\n"
        + "\n".join(lines)
        + "\n[End of the conversation so far. The new message follows.]\n\n"
    )


def _image_files(images: Sequence[ImagePart], scratch: Path) -> list[str]:
    """Paths for ``--image``: each image's bytes, as read when the request came
    (:meth:`~..conversation.ImagePart.read`), written into ``scratch`` (0700, the plugin's own,
    removed after the run): codex reads a private copy, never a path in the workspace that the
    agent could have swapped for a link since."""
    out: list[str] = []
    if images:
        scratch.mkdir(mode=0o700)  # a fresh name: never an existing folder
    for n, image in enumerate(images):
        if image.content is None:  # http(s): refused before the turn (codex exec takes files)
            raise CodexProcessError(f"codex exec cannot take the image {image.url!r}")
        path = scratch / f"image-{n}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(image.content)
        out.append(str(path))
    return out


class ExecEngine:
    """Runs every turn as its own ``codex exec``: nothing is shared between turns but files."""

    name: Literal["exec"] = "exec"
    rollout_lags = False

    def __init__(
        self,
        binary: str,
        env: Mapping[str, str],
        extra_args: Sequence[str] = (),
        limiter: Limiter | None = None,
    ) -> None:
        self.binary = binary
        self.limiter = limiter
        self.env = limiter.env(dict(env)) if limiter is not None else dict(env)
        self.extra_args = tuple(extra_args)
        self.codex_home = codex_home(self.env)
        self._locator = RolloutLocator(self.codex_home)

    async def start_run(self, spec: RunSpec) -> ExecRun:
        first: list[CodexEvent] = []
        if spec.resume is not None and spec.instructions_update is not None:
            try:
                await asyncio.to_thread(self._give, spec.resume, spec.instructions_update)
            except (ProviderError, OSError) as exc:
                first.append(
                    CodexWarning(f"the agent's changed instructions were not given: {exc}")
                )
        prompt = spec.prompt
        if spec.resume is None and spec.history:
            prompt = recap(spec.history) + prompt
        scratch = Path(tempfile.gettempdir()) / f"plexum-images-{uuid.uuid4().hex}"
        try:
            images = await asyncio.to_thread(_image_files, spec.images, scratch)
            git_folder, skip_docs = (
                await asyncio.to_thread(
                    prepare_workspace, spec.workspace, self.codex_home, self.extra_args
                )
                if spec.policy.confined
                else (False, False)
            )
            argv = exec_argv(
                self.binary,
                resume_thread=spec.resume,
                model=spec.model,
                effort=spec.effort,
                mcp_server=spec.mcp_server,
                policy=spec.policy,
                instructions=spec.instructions if spec.resume is None else None,
                images=images,
                extra_args=self.extra_args,
                skip_project_docs=skip_docs,
                git_folder=git_folder,
            )
            env = self.env
            if spec.traceparent:
                # codex reads a W3C trace context from its environment (0.163-0.171:
                # "TRACEPARENT detected; continuing trace from parent context").
                env = {**env, "TRACEPARENT": spec.traceparent}
            gate = None
            limiter = self.limiter
            if limiter is not None and spec.policy.confined:
                try:  # the cgroup the helper moves this agent's commands into
                    limiter.prepare(str(spec.workspace))
                except OSError as exc:
                    raise CodexProcessError(
                        f"the agent's limits could not be applied: {exc}"
                    ) from None
                workspace, gate_env = str(spec.workspace), env

                async def gate(pid: int) -> None:
                    await limiter.gate_exec(pid, workspace, gate_env)

            process = await CodexProcess.start(
                argv,
                cwd=str(spec.workspace),
                env=env,
                prompt=prompt.encode("utf-8"),
                gate=gate,
            )
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        sub_agents = spec.policy.config().get("agents.enabled") is True
        return ExecRun(
            process,
            resume=spec.resume,
            first=first,
            scratch=scratch,
            sub_agents_in=self.codex_home if sub_agents else None,
        )

    def _give(self, thread_id: str, instructions: str) -> None:
        """A developer message at the end of the thread's rollout: what ``codex exec resume``
        sends the model next (it ignores a changed ``developer_instructions``, 0.163-0.171)."""
        path = self._locator.find(thread_id)
        if path is None:
            return  # a thread codex no longer knows: the turn starts a new one, which gets them
        with thread_writer_lock(self.codex_home, thread_id):
            append_response_items(path, thread_id, [message_item("developer", instructions)])

    def holds_thread(self, thread_id: str) -> bool:
        return False  # a codex exec holds its thread only while its turn runs

    def status(self) -> dict[str, Any]:
        return {"engine": self.name, "process": None, "loaded_threads": []}

    async def release_thread(self, thread_id: str) -> None:
        return None

    async def close(self) -> None:
        return None
