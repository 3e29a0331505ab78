"""A codex seam without codex: recorded ``codex exec`` JSONL lines, replayed.

Give :class:`FakeEngine` one :class:`FakeRun` per codex run a test expects (a turn that resumes a
stale thread runs codex twice); hand it to :class:`~plexum_openai_provider.CodexProvider` in
place of a real engine. The lines go through the same parser and the same mapping as a real
``codex exec``'s, so what a turn does with them is what it would do with codex's own::

    engine = FakeEngine([FakeRun(exec_lines.turn("0199…", "hello"))])
    provider = CodexProvider(HostConfig(), engine, env={"CODEX_HOME": str(tmp)})

:data:`exec_lines` builds lines in the shapes codex 0.163 prints (see
``tests/data/exec-0.163-lines.jsonl`` for recorded ones).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .._engine.exec import ExecRun
from .._engine.seam import RunSpec
from .._io.framing import OversizeLine
from ..conversation import ImagePart
from ..events import Usage

__all__ = ["FakeEngine", "FakeRun", "exec_lines"]


@dataclass(frozen=True)
class FakeRun:
    """One scripted codex run.

    ``lines`` are printed in order (``delay_s`` apart, or ``pauses[i]`` before line ``i``); then, with ``hang``, nothing more until
    the run is stopped; then the process exits with ``exit_code`` (``stopped_exit_code`` after a
    stop, printing ``on_stop`` first, as codex prints its aborted turn). ``stderr`` is its tail.
    An int in ``lines`` stands for an oversize line of that many bytes."""

    lines: Sequence[bytes | str | int] = ()
    exit_code: int = 0
    stderr: str = ""
    hang: bool = False
    delay_s: float = 0.0
    pauses: Mapping[int, float] = field(default_factory=dict)
    on_stop: Sequence[bytes | str] = ()
    stopped_exit_code: int = 130
    # Takes a steer (as codex's app-server does) and prints these lines when it does.
    on_steer: Sequence[bytes | str] | None = None


class _FakeProcess:
    """The :class:`~.._engine.exec.LineSource` of a :class:`FakeRun`."""

    def __init__(self, run: FakeRun) -> None:
        self.run = run
        self.lines: asyncio.Queue[bytes | OversizeLine | None] = asyncio.Queue()
        self.stopped = asyncio.Event()
        self.exited = asyncio.Event()
        self.returncode: int | None = None
        self._task = asyncio.create_task(self._play())

    @staticmethod
    def _line(line: bytes | str | int) -> bytes | OversizeLine:
        if isinstance(line, int):
            return OversizeLine(line)
        return line.encode() if isinstance(line, str) else line

    async def _play(self) -> None:
        run = self.run
        for i, line in enumerate(run.lines):
            pause = run.pauses.get(i, run.delay_s if i else 0.0)
            if pause:
                try:
                    await asyncio.wait_for(self.stopped.wait(), pause)
                    break
                except TimeoutError:
                    pass
            if self.stopped.is_set():
                break
            await self.lines.put(self._line(line))
        if run.hang and not self.stopped.is_set():
            await self.stopped.wait()
        if self.stopped.is_set():
            for line in run.on_stop:
                await self.lines.put(self._line(line))
        self.returncode = run.stopped_exit_code if self.stopped.is_set() else run.exit_code
        await self.lines.put(None)
        self.exited.set()

    async def wait(self) -> int:
        await self.exited.wait()
        assert self.returncode is not None
        return self.returncode

    async def stop(self) -> int:
        self.stopped.set()
        return await self.wait()

    def steer(self) -> bool:
        if self.run.on_steer is None or self.exited.is_set() or self.stopped.is_set():
            return False
        for line in self.run.on_steer:
            self.lines.put_nowait(self._line(line))
        return True

    def stderr_tail(self, limit: int = 2000) -> str:
        return self.run.stderr[-limit:].strip()


class _FakeRun(ExecRun):
    """An exec run that, when scripted to, takes a steer (``FakeRun.on_steer``)."""

    def __init__(self, process: _FakeProcess, *, resume: str | None, engine: FakeEngine) -> None:
        super().__init__(process, resume=resume)
        self._process = process
        self._engine = engine

    async def steer(self, prompt: str, images: tuple[ImagePart, ...]) -> bool:
        if not self._process.steer():
            return False
        self._engine.steered.append(prompt)
        self._engine.steered_images.append(images)
        return True


@dataclass
class FakeEngine:
    """An engine that plays :class:`FakeRun` s in order; :attr:`specs` records what each run
    was asked to do (the resumed thread, the model, the MCP server…)."""

    runs: list[FakeRun]
    name: Literal["exec"] = "exec"
    rollout_lags: bool = False
    specs: list[RunSpec] = field(default_factory=list)
    processes: list[_FakeProcess] = field(default_factory=list)
    held: set[str] = field(default_factory=set)  # threads holds_thread() answers True for
    released: list[str] = field(default_factory=list)
    steered: list[str] = field(default_factory=list)  # the prompts runs took as steers
    steered_images: list[tuple[ImagePart, ...]] = field(default_factory=list)  # and their images
    closed: bool = False

    async def start_run(self, spec: RunSpec) -> ExecRun:
        if not self.runs:
            raise AssertionError(f"FakeEngine: no scripted run left for {spec}")
        self.specs.append(spec)
        process = _FakeProcess(self.runs.pop(0))
        self.processes.append(process)
        return _FakeRun(process, resume=spec.resume, engine=self)

    def holds_thread(self, thread_id: str) -> bool:
        return thread_id in self.held

    def status(self) -> dict[str, Any]:
        return {"engine": self.name, "process": None, "loaded_threads": sorted(self.held)}

    async def release_thread(self, thread_id: str) -> None:
        self.released.append(thread_id)
        self.held.discard(thread_id)

    async def close(self) -> None:
        self.closed = True


class exec_lines:  # a namespace of line builders, lower-case like a module
    """``codex exec --json`` lines, in the shapes codex 0.163 prints."""

    @staticmethod
    def thread_started(thread_id: str) -> str:
        return json.dumps({"type": "thread.started", "thread_id": thread_id})

    @staticmethod
    def turn_started() -> str:
        return json.dumps({"type": "turn.started"})

    @staticmethod
    def agent_message(text: str, item_id: str = "item_1") -> str:
        item = {"id": item_id, "type": "agent_message", "text": text}
        return json.dumps({"type": "item.completed", "item": item})

    @staticmethod
    def warning(message: str, item_id: str = "item_0") -> str:
        item = {"id": item_id, "type": "error", "message": message}
        return json.dumps({"type": "item.completed", "item": item})

    @staticmethod
    def command_started(command: str, item_id: str = "item_2") -> str:
        item = {
            "id": item_id,
            "type": "command_execution",
            "command": command,
            "aggregated_output": "",
            "exit_code": None,
            "status": "in_progress",
        }
        return json.dumps({"type": "item.started", "item": item})

    @staticmethod
    def command_done(command: str, output: str, item_id: str = "item_2") -> str:
        item = {
            "id": item_id,
            "type": "command_execution",
            "command": command,
            "aggregated_output": output,
            "exit_code": 0,
            "status": "completed",
        }
        return json.dumps({"type": "item.completed", "item": item})

    @staticmethod
    def turn_completed(usage: Usage) -> str:
        wire = {
            "input_tokens": usage.input_tokens,
            "cached_input_tokens": usage.cached_input_tokens,
            "output_tokens": usage.output_tokens,
            "reasoning_output_tokens": usage.reasoning_output_tokens,
        }
        return json.dumps({"type": "turn.completed", "usage": wire})

    @staticmethod
    def turn_failed(message: str) -> str:
        return json.dumps({"type": "turn.failed", "error": {"message": message}})

    @staticmethod
    def error(message: str) -> str:
        return json.dumps({"type": "error", "message": message})

    @classmethod
    def turn(cls, thread_id: str, text: str, usage: Usage | None = None) -> list[str]:
        """The lines of a whole completed turn that answers ``text``."""
        usage = usage or Usage(100, 0, 10, 0)
        return [
            cls.thread_started(thread_id),
            cls.turn_started(),
            cls.agent_message(text),
            cls.turn_completed(usage),
        ]
