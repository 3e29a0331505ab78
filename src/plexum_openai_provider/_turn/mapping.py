"""What a run's codex events mean for the host: pure, no I/O, no clock.

:class:`AttemptMapper` takes the :data:`~.._engine.seam.CodexEvent` values of one codex run and
gives the canonical :data:`~..events.Event` values to send now, while it keeps what decides how
the run ended. The rules:

* text → ``text_delta``; a codex warning → ``notice codex_warning``;
* a codex ``error`` is held back: if ``turn.failed`` follows, that failure says it all; if
  anything else follows, it was not fatal and becomes a ``notice codex_error`` (codex prints
  "Reconnecting... 1/5" this way); if the run ends with nothing at all, it is the reason;
* a resume that codex answered with another thread → ``notice resume_failed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._engine import seam
from ..events import Event, Notice, TextDelta

__all__ = ["AttemptMapper", "AttemptState"]


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

    @property
    def ended(self) -> bool:
        """codex reported an end of the turn (completed, failed or interrupted)."""
        return self.done is not None or self.failed is not None or self.interrupted is not None


class AttemptMapper:
    def __init__(self, resume: str | None) -> None:
        self.resume = resume
        self.state = AttemptState()

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
                out.append(TextDelta(event.text, event.message_id or "message", event.phase))
        elif isinstance(event, seam.CodexWarning):
            out.append(Notice("codex_warning", event.message))
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

    def close(self) -> list[Event]:
        """At the run's end: a held-back error of a turn that did end is only a notice."""
        state = self.state
        if state.pending_error is not None and state.ended:
            error, state.pending_error = state.pending_error, None
            return [Notice("codex_error", error)]
        return []
