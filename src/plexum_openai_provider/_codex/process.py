"""One codex child process: its own process group, stdout for its owner, stderr kept in a ring.

Two shapes: a ``codex exec`` gets its prompt on stdin, which is then closed, and its stdout is read
as :attr:`CodexProcess.lines`; a ``codex app-server`` keeps stdin open and its owner speaks
JSON-RPC on :attr:`~CodexProcess.stdin` / :attr:`~CodexProcess.stdout`.

Stopping is bounded and escalates: SIGINT to the whole group (codex records the turn as aborted and
ends its tools), then SIGTERM, then SIGKILL. SIGTERM alone leaves codex's children orphaned (codex
0.169), so signals always go to the group. Killing only npm's node wrapper leaves the native codex
running: the group signal reaches both. Once codex has exited, what it left is ended by the
guard (:mod:`.guard`), gently: its group's leftovers get SIGTERM at once, SIGKILL after a grace;
what it left in other sessions (its login-shell snapshot, a tool that called setsid: found through
/proc before the first signal, and re-parented to the plugin) first gets a moment to end by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence

from .._io.framing import OversizeLine, read_lines
from .guard import LEFTOVER_WAIT_S, descendants, guard, process_group

__all__ = ["CodexProcess", "descendants"]

log = logging.getLogger(__name__)

STDERR_TAIL_BYTES = 16 * 1024
PIPE_DRAIN_S = 2.0
SIGINT_REPEAT_S = 0.5
# A stop waits this long at most for what codex left to be ended (SIGTERM, the 0.5 s grace,
# SIGKILL: well within it).
STOP_LEFTOVERS_S = 3.0


class CodexProcess:
    """Started by :meth:`start`; always :meth:`stop` or :meth:`wait` it.

    With ``prompt`` bytes: they are written to stdin, which is then closed, and stdout comes as
    :attr:`lines` until ``None``. Without: stdin stays open (:attr:`stdin`) and stdout is the
    owner's to read (:attr:`stdout`)."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        prompt: bytes | None,
        run: str | None = None,
        gate: Callable[[int], Awaitable[object]] | None = None,
    ) -> None:
        self._proc = proc
        self.pid = proc.pid
        self.run = run
        self._stopping = False
        self._leftovers: asyncio.Task[None] | None = None  # the ending of what it left
        assert proc.stdin is not None and proc.stdout is not None
        self.stdin = proc.stdin
        self.stdout = proc.stdout
        self.lines: asyncio.Queue[bytes | OversizeLine | None] = asyncio.Queue()
        self._stderr: deque[bytes] = deque()
        self._stderr_size = 0
        self._tasks = [asyncio.create_task(self._read_stderr())]
        if prompt is not None:
            self._tasks += [
                asyncio.create_task(self._feed_stdin(prompt, gate)),
                asyncio.create_task(self._read_stdout()),
            ]
        self._reaper = asyncio.create_task(self._reap())

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        cwd: str | None,
        env: Mapping[str, str] | None = None,
        prompt: bytes | None = None,
        run: str | None = None,
        gate: Callable[[int], Awaitable[object]] | None = None,
    ) -> CodexProcess:
        """``run``: what the guard marks this codex and its children with (see
        :mod:`.guard`); a new one when not given. ``gate(pid)``: awaited before the prompt is
        written (codex asks the model nothing, so runs no command, before it has it)."""
        keeper = guard()
        run = run or keeper.new_run("codex")
        keeper.sweep()
        with keeper.starting():
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env={**(os.environ if env is None else env), **keeper.marker(run)},
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # own process group, so that stop() reaches every child
                limit=1 << 20,
            )
            keeper.started(proc.pid)
        log.debug("started codex pid %d (run %s): %s", proc.pid, run, list(argv))
        return cls(proc, prompt, run, gate)

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    def stderr_tail(self, limit: int = 2000) -> str:
        text = b"".join(self._stderr).decode("utf-8", errors="replace")
        return text[-limit:].strip()

    async def _feed_stdin(
        self, data: bytes, gate: Callable[[int], Awaitable[object]] | None = None
    ) -> None:
        stdin = self.stdin
        try:
            if gate is not None:
                await gate(self.pid)
            if data:
                stdin.write(data)
                await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            log.debug("codex closed its stdin early")
        finally:
            # Closed at once, always: codex reads a non-terminal stdin to its end.
            with contextlib.suppress(OSError):
                stdin.close()

    async def _read_stdout(self) -> None:
        try:
            async for line in read_lines(self.stdout):
                await self.lines.put(line)
        finally:
            self.lines.put_nowait(None)

    async def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        async for line in read_lines(self._proc.stderr, max_line=STDERR_TAIL_BYTES):
            if isinstance(line, OversizeLine):
                line = b"[%d bytes]" % line.size
            log.debug("codex %d stderr: %s", self.pid, line.decode("utf-8", errors="replace"))
            self._stderr.append(line + b"\n")
            self._stderr_size += len(line) + 1
            while self._stderr_size > STDERR_TAIL_BYTES and len(self._stderr) > 1:
                self._stderr_size -= len(self._stderr.popleft())

    async def _reap(self) -> None:
        """Once codex has exited, end what it left, and stop waiting for its pipes.

        A leftover child that still holds stdout would otherwise keep EOF from ever coming.
        """
        await self._proc.wait()
        keeper = guard()
        keeper.end_group(self.pid)
        # What it left in other sessions; when it was stopped, at once (gently) and waited for:
        # a stopped turn's result comes when nothing of it runs.
        self._leftovers = keeper.ended(
            self.pid, self.run, wait_s=0.0 if self._stopping else LEFTOVER_WAIT_S
        )
        _done, pending = await asyncio.wait(self._tasks, timeout=PIPE_DRAIN_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait(self) -> int:
        """Wait for codex to exit and for its output to be read."""
        await asyncio.shield(self._reaper)
        code = self._proc.returncode
        assert code is not None
        return code

    async def stop(self, *, int_grace_s: float = 3.0, term_grace_s: float = 2.0) -> int:
        """SIGINT → wait → SIGTERM → wait → SIGKILL to codex's group; then what it left in other
        sessions is ended by the guard (it gets a moment to end by itself, then SIGTERM).

        SIGINT is sent again every :data:`SIGINT_REPEAT_S` while codex runs: codex 0.163 swallows
        one that comes after its handler is installed but before its turn has begun (about 0.1 s
        into its start), and then goes on to ask the model (measured: a cancel 0.12 s after the
        start took until SIGKILL; repeated, codex ended 0.25 s after the first). In a slightly
        later phase of its start it ignores every SIGINT, and the SIGTERM after ``int_grace_s``
        ends it."""
        if self._proc.returncode is None:
            self._stopping = True
            strays = [p for p in descendants(self.pid) if process_group(p) not in (self.pid, None)]
            for sig, grace in (
                (signal.SIGINT, int_grace_s),
                (signal.SIGTERM, term_grace_s),
                (signal.SIGKILL, None),
            ):
                if grace is None:
                    self._signal_group(sig)
                    break
                if await self._signal_until_exit(sig, grace):
                    break
                log.info("codex pid %d still running after %s, escalating", self.pid, sig.name)
            # Re-parented to this process when it is the subreaper (its sweep ends them too);
            # to init otherwise, where nothing else would.
            ending = guard().end(strays)
            code = await self.wait()
            for task in (ending, self._leftovers):
                if task is not None:  # bounded by the ending's own steps; this is a backstop
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(task), STOP_LEFTOVERS_S)
            return code
        return await self.wait()

    async def _signal_until_exit(self, sig: signal.Signals, grace: float) -> bool:
        """``sig`` to the group (SIGINT again every SIGINT_REPEAT_S); True if codex exited within
        ``grace``."""
        deadline = asyncio.get_running_loop().time() + grace
        while True:
            self._signal_group(sig)
            left = deadline - asyncio.get_running_loop().time()
            wait = min(left, SIGINT_REPEAT_S) if sig is signal.SIGINT else left
            try:
                await asyncio.wait_for(asyncio.shield(self._proc.wait()), max(wait, 0.0))
                return True
            except TimeoutError:
                if left <= wait:
                    return False

    def abort(self) -> None:
        """End codex now, without waiting (a wedged app-server): SIGTERM to its group and its
        descendants, SIGKILL after the grace, in the background."""
        guard().end([self.pid, *descendants(self.pid)], groups=[self.pid])

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
