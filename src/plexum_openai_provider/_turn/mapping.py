"""What a run's codex events mean for the host: pure, no I/O, no clock.

:class:`AttemptMapper` takes the :data:`~.._engine.seam.CodexEvent` values of one codex run and
gives the canonical :data:`~..events.Event` values to send now, while it keeps what decides how
the run ended. The rules:

* text → ``text_delta``; a codex warning → ``notice codex_warning``;
* a codex ``error`` is held back: if ``turn.failed`` follows, that failure says it all; if
  anything else follows, it was not fatal and becomes a ``notice codex_error`` (codex prints
  "Reconnecting... 1/5" this way); if the run ends with nothing at all, it is the reason;
* a resume that codex answered with another thread → ``notice resume_failed``;
* what the agent does meanwhile: a reasoning summary → ``reasoning_delta``; the plan → ``plan``
  (a plan that did not change is not sent again: exec prints the same list at an item's start
  and end); a patch applied → ``file_change``; a running command's output →
  ``tool_output_delta``, at most :data:`OUTPUT_BOUND` characters of it per call (then one line
  saying the rest comes with the call's result), and never before the call's ``tool_started``
  (held until then: the engine may report output before the rollout shows the call);
* the tool blocks the rollout gives (:meth:`AttemptMapper.blocks`) pass through; they are the
  ids (a call's ``call_id``) that an engine's own item ids are mapped to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._engine import seam
from ..events import (
    Event,
    FileChanged,
    Notice,
    Plan,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolOutputDelta,
    ToolResult,
    ToolStarted,
)

__all__ = ["OUTPUT_BOUND", "AttemptMapper", "AttemptState"]

# How much of one call's output is sent as it comes (the whole of it is in its tool_result).
OUTPUT_BOUND = 64 * 1024
OUTPUT_CUT = "\n[the output goes on; all of it comes with the call's tool_result]\n"
# Which of codex's items go with which calls, where an engine's item ids are not the calls'
# (codex exec's `item_N`): a command is a shell call, a file change a patch, an MCP call a call
# in a namespace.
_PATCH = frozenset({"apply_patch"})
_NOT_COMMANDS = frozenset({"apply_patch", "update_plan", "exec", "wait"})


@dataclass
class AttemptState:
    """What one codex run ended with, as far as its events tell."""

    thread_id: str | None = None
    rollout: object | None = None  # the path the engine named, if any
    done: seam.TurnDone | None = None
    failed: str | None = None
    failed_info: object = None  # codex's codexErrorInfo of the failure (app-server)
    interrupted: str | None = None
    resume_failed: str | None = None
    new_thread: bool = False  # codex started another thread than the one to resume
    input_taken: bool = False  # codex has the turn's input (it is in the thread)
    pending_error: str | None = None
    skipped: list[str] = field(default_factory=list)
    context: seam.ContextUsage | None = None  # the engine's last word on the context window

    @property
    def ended(self) -> bool:
        """codex reported an end of the turn (completed, failed or interrupted)."""
        return self.done is not None or self.failed is not None or self.interrupted is not None


class AttemptMapper:
    def __init__(self, resume: str | None) -> None:
        self.resume = resume
        self.state = AttemptState()
        self._started: dict[str, ToolStarted] = {}  # calls started, by block id
        self._paired: dict[str, str] = {}  # an engine's item id → its call's block id
        self._sent: dict[str, int] = {}  # output characters sent per block
        self._held: dict[str, list[str]] = {}  # output of a call not started yet
        self._plan: Plan | None = None

    def blocks(self, events: list[Event]) -> list[Event]:
        """The rollout's tool blocks, with a call's held output after its ``tool_started``."""
        out: list[Event] = []
        for event in events:
            out.append(event)
            if isinstance(event, ToolStarted):
                self._started[event.block_id] = event
                for text in self._held.pop(event.block_id, ()):
                    out.extend(self._output(event.block_id, text))
            elif isinstance(event, ToolCall):
                self._held.pop(event.block_id, None)
        return out

    def block_id(self, item_id: str, item_type: str) -> str:
        """The call an item of the engine's own ids is (exec's ``item_N``): the one it was
        paired with, else the earliest started call of its kind not paired yet, else the item
        id."""
        if item_id in self._paired:
            return self._paired[item_id]
        taken = set(self._paired.values())
        for block_id, call in self._started.items():
            if block_id not in taken and _fits(item_type, call):
                self._paired[item_id] = block_id
                return block_id
        return item_id

    def _output(self, block_id: str, text: str) -> list[Event]:
        sent = self._sent.get(block_id, 0)
        if sent > OUTPUT_BOUND:
            return []
        room = OUTPUT_BOUND - sent
        self._sent[block_id] = sent + len(text)
        if len(text) <= room:
            return [ToolOutputDelta(block_id, text)]
        self._sent[block_id] = OUTPUT_BOUND + 1
        head = [ToolOutputDelta(block_id, text[:room])] if room else []
        return [*head, ToolOutputDelta(block_id, OUTPUT_CUT)]

    def feed(self, event: seam.CodexEvent) -> list[Event]:
        state = self.state
        out: list[Event] = []
        if state.pending_error is not None and not isinstance(
            event, (seam.TurnFailed, seam.CodexError)
        ):
            out.append(Notice("codex_error", state.pending_error))
            state.pending_error = None
        if isinstance(event, seam.ThreadStarted):
            state.thread_id = event.thread_id
            state.rollout = event.rollout
            if self.resume is not None and event.thread_id != self.resume:
                # `codex exec resume` with an id it cannot use may start a new thread silently.
                state.new_thread = True
                out.append(
                    Notice(
                        "resume_failed",
                        f"codex started thread {event.thread_id} instead of resuming"
                        f" {self.resume}; the earlier context is lost",
                    )
                )
        elif isinstance(event, seam.TurnStarted):
            state.input_taken = True
        elif isinstance(event, seam.Text):
            if event.text:
                message = event.message_id or "message"
                out.append(TextDelta(event.text, message, event.phase, event.sub_agent))
        elif isinstance(event, seam.SubAgentTool):
            agent = event.sub_agent
            out.append(ToolCall(event.call_id, event.name, event.arguments, event.namespace, agent))
            out.append(ToolResult(event.call_id, event.output, event.is_error, agent))
        elif isinstance(event, seam.CodexWarning):
            out.append(Notice("codex_warning", event.message))
        elif isinstance(event, seam.OutputDelta):
            block = event.item_id
            if block in self._started:
                out.extend(self._output(block, event.text))
            elif sum(len(t) for t in self._held.get(block, ())) <= OUTPUT_BOUND:
                self._held.setdefault(block, []).append(event.text)
        elif isinstance(event, seam.Reasoning):
            if event.text:
                out.append(ReasoningDelta(event.reasoning_id, event.text))
        elif isinstance(event, seam.PlanUpdated):
            plan = Plan(event.steps, event.explanation)
            if plan != self._plan:
                self._plan = plan
                out.append(plan)
        elif isinstance(event, seam.FilesChanged):
            block = event.call_id or self.block_id(event.item_id, "file_change")
            out.append(FileChanged(block, event.changes))
        elif isinstance(event, seam.ContextUsage):
            state.context = event
        elif isinstance(event, seam.CodexError):
            if state.pending_error is not None:
                out.append(Notice("codex_error", state.pending_error))
            state.pending_error = event.message
        elif isinstance(event, seam.TurnDone):
            state.done = event
        elif isinstance(event, seam.TurnFailed):
            state.failed = event.message
            state.failed_info = event.info
            state.pending_error = None
        elif isinstance(event, seam.TurnInterrupted):
            state.interrupted = event.message
        elif isinstance(event, seam.ResumeFailed):
            state.resume_failed = event.detail
        elif isinstance(event, seam.Unparsed):
            state.skipped.append(event.reason)
        return out

    def item_started(self, event: seam.ItemStarted) -> None:
        """An engine's item began: pair it with its call now, while the order is plain."""
        if event.call_id is None:
            self.block_id(event.item_id, event.item_type)

    def close(self) -> list[Event]:
        """At the run's end: a held-back error of a turn that did end is only a notice."""
        state = self.state
        if state.pending_error is not None and state.ended:
            error, state.pending_error = state.pending_error, None
            return [Notice("codex_error", error)]
        return []


def _fits(item_type: str, call: ToolStarted) -> bool:
    if item_type in ("file_change", "fileChange"):
        return call.name in _PATCH
    if item_type in ("mcp_tool_call", "mcpToolCall"):
        return call.namespace is not None
    if item_type in ("command_execution", "commandExecution"):
        return call.namespace is None and call.name not in _NOT_COMMANDS
    return False
