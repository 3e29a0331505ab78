"""The codex seam: what one run of codex gives a turn, whichever way codex is driven.

An :class:`Engine` starts a :class:`CodexRun` for a :class:`RunSpec` (a workspace, the turn's input,
the thread to resume, the model, the host-tool MCP server, the agent's policy, its instructions
and, for a new thread, the conversation so far). The run yields :data:`CodexEvent` values
as codex reports them, can be stopped, and says how it ended (:class:`RunExit`) and what codex
said on stderr. The turn logic (:mod:`.._turn`) only ever sees this: it runs the same on a ``codex
exec`` per turn (:mod:`.exec`), on one shared ``codex app-server`` (:mod:`.app_server`), and on
recorded lines in unit tests (:mod:`plexum_openai_provider.testing.fake_codex`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias

from .._codex.command import McpServerSpec
from .._codex.policy import UNCONFINED, AgentPolicy
from .._codex.sub_agents import SubAgentBlock
from ..conversation import ImagePart
from ..events import FileChange, Phase, PlanStep, Usage

__all__ = [
    "NOT_YET",
    "CodexError",
    "CodexEvent",
    "CodexRun",
    "CodexWarning",
    "ContextUsage",
    "Engine",
    "FilesChanged",
    "HistoryEntry",
    "ItemDone",
    "ItemStarted",
    "NotYet",
    "Other",
    "OutputDelta",
    "PlanUpdated",
    "Ready",
    "Reasoning",
    "ResumeFailed",
    "RunExit",
    "RunSpec",
    "SubAgentTool",
    "Text",
    "ThreadStarted",
    "TurnDone",
    "TurnFailed",
    "TurnInterrupted",
    "TurnStarted",
    "Unparsed",
]


@dataclass(frozen=True)
class HistoryEntry:
    """One message of the conversation before a new thread's first turn."""

    role: str  # "user" or "assistant"
    text: str


@dataclass(frozen=True)
class RunSpec:
    workspace: Path
    prompt: str  # the turn's input text
    resume: str | None  # the thread to continue, or None for a new one
    model: str | None  # codex's model name, or None for codex's default
    effort: str | None = None  # the model's reasoning effort, or None for its default
    mcp_server: McpServerSpec | None = None
    policy: AgentPolicy = UNCONFINED  # the agent's sandbox and codex features
    images: tuple[ImagePart, ...] = ()  # the turn's images (validated)
    instructions: str = ""  # the agent's instructions, given when a new thread starts
    # A resumed thread whose instructions changed: a developer message to give it before the turn.
    instructions_update: str | None = None
    history: tuple[HistoryEntry, ...] = ()  # a new thread's conversation so far
    traceparent: str | None = None  # a W3C trace context codex's own spans join


# -- what a run reports -------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadStarted:
    """The run's thread (new or resumed); ``rollout`` when the engine knows where it is."""

    thread_id: str
    rollout: Path | None = None


@dataclass(frozen=True)
class TurnStarted:
    """codex has taken the turn's input (it is in the thread from now on)."""


@dataclass(frozen=True)
class Text:
    """The next piece of one of the turn's messages (a streamed delta, or a whole message):
    codex's item id for the message, and its phase where codex says."""

    text: str
    message_id: str = ""
    phase: Phase | None = None
    sub_agent: str | None = None  # a codex sub-agent's message (its path), not the agent's own


@dataclass(frozen=True)
class CodexWarning:
    """Something codex warns about and goes on (e.g. unknown model metadata)."""

    message: str


@dataclass(frozen=True)
class CodexError:
    """An error codex reported; it ends the turn only if :class:`TurnFailed` follows."""

    message: str


@dataclass(frozen=True)
class ItemStarted:
    """Something of the turn began running (a command, a tool call): until its ItemDone, codex
    may be silent without being idle (a build that prints nothing for minutes)."""

    item_id: str
    item_type: str
    # The item's call id where the engine's item ids are codex's call ids (app-server); None
    # where they are ids of their own (exec's `item_N`), which the turn pairs with its call.
    call_id: str | None = None


@dataclass(frozen=True)
class ItemDone:
    """An item of the turn completed (a tool call among others): its block may be readable."""

    item_id: str
    item_type: str


@dataclass(frozen=True)
class OutputDelta:
    """A piece of a running command's output (app-server, whose command item id is the call's
    id; ``codex exec`` prints none)."""

    item_id: str
    text: str


@dataclass(frozen=True)
class Reasoning:
    """A piece of a reasoning summary (app-server streams them; exec prints each whole)."""

    reasoning_id: str
    text: str


@dataclass(frozen=True)
class PlanUpdated:
    steps: tuple[PlanStep, ...]
    explanation: str | None = None


@dataclass(frozen=True)
class FilesChanged:
    """A file change codex applied (its item; the files, with line counts where codex gives the
    diff)."""

    item_id: str
    changes: tuple[FileChange, ...]
    call_id: str | None = None  # as ItemStarted's


@dataclass(frozen=True)
class ContextUsage:
    """Tokens in the thread now (the last model request's input and output) and the model's
    context window, as codex reports them after each model response."""

    tokens: int
    window: int | None


@dataclass(frozen=True)
class TurnDone:
    """The turn completed. ``usage`` is the turn's own tokens (``scope="turn"``) or the thread's
    running total (``scope="thread"``, what ``codex exec`` prints); ``duration_ms`` codex's own
    measure of the turn, where it gives one (app-server)."""

    usage: Usage | None
    scope: Literal["turn", "thread"]
    duration_ms: int | None = None


@dataclass(frozen=True)
class TurnFailed:
    message: str
    info: Any = None  # the app-server's codexErrorInfo, where codex gives one


@dataclass(frozen=True)
class TurnInterrupted:
    """codex ended the turn as interrupted (after a stop, or on its own)."""

    message: str


@dataclass(frozen=True)
class ResumeFailed:
    """codex does not know the thread to resume (its rollout is gone): start a new one."""

    detail: str


@dataclass(frozen=True)
class Unparsed:
    """Output the engine could not read (malformed or oversize); logged, skipped."""

    reason: str


# A tool call a codex sub-agent made and its result (the agent's own come from the rollout):
# the same value the rollout reader makes of a sub-agent's thread.
SubAgentTool: TypeAlias = SubAgentBlock


@dataclass(frozen=True)
class Other:
    """Anything else codex reported; logged at debug."""

    kind: str


CodexEvent: TypeAlias = (
    ThreadStarted
    | TurnStarted
    | Text
    | CodexWarning
    | CodexError
    | ItemStarted
    | ItemDone
    | OutputDelta
    | Reasoning
    | PlanUpdated
    | FilesChanged
    | ContextUsage
    | TurnDone
    | TurnFailed
    | TurnInterrupted
    | ResumeFailed
    | SubAgentTool
    | Unparsed
    | Other
)


class NotYet(enum.Enum):
    NOT_YET = "not yet"


NOT_YET = NotYet.NOT_YET  # what :meth:`CodexRun.ready` says when no event is at hand
Ready: TypeAlias = "CodexEvent | Literal[NotYet.NOT_YET] | None"


@dataclass(frozen=True)
class RunExit:
    """How a run ended: ``exit_code`` of codex's process (None when codex lives on, as the
    app-server does) and what codex said about it (its stderr's last error, or a reason)."""

    exit_code: int | None
    detail: str


class CodexRun(Protocol):
    async def next_event(self) -> CodexEvent | None:
        """The next event; ``None`` once the run is over (then call :meth:`finish`). Safe to
        cancel: an event is not lost when a caller stops waiting."""
        ...

    def ready(self) -> Ready:
        """What :meth:`next_event` would give now without waiting, or :data:`NOT_YET` (which a
        run may always say): a turn takes the events at hand without a task and a wait each."""
        ...

    async def stop(self) -> None:
        """End the turn now (cancel, timeout), bounded: events keep coming until ``None``."""
        ...

    async def finish(self) -> RunExit:
        """How the run ended (after :meth:`next_event` gave ``None``)."""
        ...

    async def steer(self, prompt: str, images: tuple[ImagePart, ...]) -> bool:
        """Give the running turn more input (a message that came while it runs); True if codex
        took it into this turn, False if it cannot (``codex exec`` takes no input mid-turn; the
        turn has ended or is ending)."""
        ...

    def stderr_tail(self) -> str: ...


class Engine(Protocol):
    @property
    def name(self) -> Literal["exec", "app-server"]: ...

    @property
    def rollout_lags(self) -> bool:
        """The rollout may be written a little after codex reports the turn's end (app-server),
        so the turn waits (bounded) for codex's end-of-turn record before its last read."""
        ...

    async def start_run(self, spec: RunSpec) -> CodexRun:
        """Start the run; raises :class:`~plexum_openai_provider.errors.CodexProcessError` when
        codex cannot run it."""
        ...

    def holds_thread(self, thread_id: str) -> bool:
        """Does this engine's own codex hold the thread loaded (and its writer lock) now?"""
        ...

    async def release_thread(self, thread_id: str) -> None:
        """Let go of the thread (unload it) so that its rollout may be rewritten."""
        ...

    def status(self) -> dict[str, Any]:
        """What the engine holds now, for the operator: its codex process (pid, resident bytes,
        uptime) where it keeps one, and the threads it has loaded."""
        ...

    async def close(self) -> None: ...
