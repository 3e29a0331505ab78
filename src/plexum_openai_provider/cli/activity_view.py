"""What ``chat`` shows of an agent at work: the running command with a spinner and the last line
it printed (redrawn in place on a terminal), the plan as a checklist, reasoning summaries dimmed.

:meth:`ActivityView.show` takes the activity events (``tool_started``, ``tool_output_delta``,
``reasoning_delta``, ``plan``, ``file_change``, ``context``) and says whether it took the event;
anything else is the caller's. Before the caller prints, :meth:`clear` takes the spinner's line
away, so nothing is drawn over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import TextIO

from ..events import (
    ContextWindow,
    FileChanged,
    Plan,
    ReasoningDelta,
    ToolCall,
    ToolOutputDelta,
    ToolStarted,
)

__all__ = ["ActivityView"]

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_MARK = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]"}
_DIM, _RESET = "\033[2m", "\033[0m"


def _command(event: ToolStarted) -> str:
    """A shell call's command, else the call's name and arguments, on one line."""
    try:
        args = json.loads(event.arguments)
    except ValueError:
        args = None
    if isinstance(args, dict) and isinstance(args.get("cmd"), str):
        text = args["cmd"]
    else:
        text = f"{event.name} {event.arguments}"
    return " ".join(text.split())


class ActivityView:
    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self._running: dict[str, str] = {}  # block id → its command
        self._last = ""  # the last line a running command printed
        self._frame = 0
        self._drawn = False
        self._reasoning: str | None = None  # the summary being printed
        self._ticker: asyncio.Task[None] | None = None

    def show(self, event: object) -> bool:
        if isinstance(event, ToolStarted):
            if event.name == "update_plan":
                return True  # the plan itself is shown
            self.end_reasoning()
            self._running[event.block_id] = _command(event)
            self._last = ""
            self._draw()
            self._tick()
        elif isinstance(event, ToolOutputDelta):
            lines = [line for line in event.text.splitlines() if line.strip()]
            if lines and event.block_id in self._running:
                self._last = lines[-1].strip()
                if self.tty:
                    self._draw()
        elif isinstance(event, ReasoningDelta):
            self.clear()
            if self._reasoning != event.reasoning_id:
                self.end_reasoning()
                self._reasoning = event.reasoning_id
                self._write("  " + (_DIM if self.tty else "") + "thinking: ")
            self._write(event.text.replace("\n", " "))
            self.out.flush()
        elif isinstance(event, Plan):
            self.clear()
            self.end_reasoning()
            if event.explanation:
                self._write(f"  plan: {event.explanation}\n")
            else:
                self._write("  plan:\n")
            for step in event.steps:
                self._write(f"    {_MARK.get(step.status, '[ ]')} {step.step}\n")
        elif isinstance(event, FileChanged):
            self.clear()
            for change in event.changes:
                counts = ""
                if change.added is not None:
                    counts = f" (+{change.added} -{change.removed})"
                self._write(f"  [{change.kind}] {change.path}{counts}\n")
        elif isinstance(event, ContextWindow):
            self.clear()
            if event.used is not None:
                self._write(f"  [context] {event.tokens} tokens, {event.used:.0%} of the window\n")
        else:
            if isinstance(event, ToolCall):
                self._running.pop(event.block_id, None)
                if not self._running:
                    self._stop()
            self.clear()
            self.end_reasoning()
            return False
        self.out.flush()
        return True

    def end_reasoning(self) -> None:
        if self._reasoning is not None:
            self._reasoning = None
            self._write((_RESET if self.tty else "") + "\n")

    def clear(self) -> None:
        """Take the spinner's line away (a terminal redraws it on the next tick)."""
        if self._drawn and self.tty:
            self._write("\r\033[K")
        self._drawn = False

    def close(self) -> None:
        self._stop()
        self.clear()
        self.end_reasoning()

    def _draw(self) -> None:
        if not self._running:
            return
        command = next(reversed(self._running.values()))
        spin = SPINNER[self._frame % len(SPINNER)] if self.tty else "*"
        line = f"  {spin} running: {command[:60]}"
        if self._last:
            line += f"  | {self._last[:60]}"
        if self.tty:
            self._write("\r\033[K" + line)
            self._drawn = True
        else:
            self._write(line + "\n")
        self.out.flush()

    def _tick(self) -> None:
        if not self.tty or self._ticker is not None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: no animation
            self._ticker = asyncio.get_running_loop().create_task(self._spin())

    async def _spin(self) -> None:
        while self._running:
            await asyncio.sleep(0.1)
            self._frame += 1
            if self._drawn:
                self._draw()

    def _stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None

    def _write(self, text: str) -> None:
        self.out.write(text)
