"""What the agent hears: from the host's conversation, what reaches codex on this turn. Pure.

The host sends its conversation (``messages``); codex keeps its own thread. :func:`plan_turn`
decides, from the two and the record of what was delivered (:mod:`.delivery`):

* **Instructions**: the ``system`` and ``developer`` messages, in order, are the agent's
  instructions. They reach the model as a developer message: when a thread starts, and, when they
  changed, before the next turn of a resumed thread (after the earlier ones, which stay in
  codex's history: codex rebuilds a resumed thread's context from its rollout and ignores new
  start-up instructions, measured on 0.163 and 0.169).
* **The turn's input**: every ``user`` message after the agent's last ``assistant`` message (the
  host's record of its previous answer), in order, each with its speaker (``name``) before it;
  their images with them.
* **Never twice**: messages of that segment that codex already took (a turn that failed or was
  cancelled after codex had its input, and a host that sends the same conversation again) are
  left out; if nothing is left, codex is asked to answer what it has (:data:`CONTINUE`).
* **History for a new thread**: when the turn starts a codex thread (none recorded, or the
  recorded one is gone), the messages before the segment are given to it as the conversation so
  far: the newest, at most :data:`HISTORY_MAX_MESSAGES` messages and :data:`HISTORY_MAX_CHARS`
  characters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from .._engine.seam import HistoryEntry
from ..conversation import ChatMessage, ImagePart, TextPart
from ..errors import InvalidRequestError
from ..requests import MAX_INSTRUCTIONS_CHARS, MAX_PROMPT_CHARS
from .delivery import Delivery

__all__ = [
    "CONTINUE",
    "HISTORY_MAX_CHARS",
    "HISTORY_MAX_MESSAGES",
    "HistoryEntry",
    "TurnInput",
    "TurnPlan",
    "check_conversation",
    "message_digest",
    "plan_turn",
]

HISTORY_MAX_MESSAGES = 100
HISTORY_MAX_CHARS = 100_000
# The input of a turn whose messages codex already has (their turn ended before an answer).
CONTINUE = "(The previous turn ended before it answered. Answer the messages above.)"


@dataclass(frozen=True)
class TurnInput:
    """What codex is given as the turn's input: its text and images, and how many of the host's
    messages it carries (0: :data:`CONTINUE`)."""

    text: str
    images: tuple[ImagePart, ...] = ()
    messages: int = 1


@dataclass(frozen=True)
class TurnPlan:
    instructions: str  # "" when the host gave none
    instructions_digest: str | None
    instructions_changed: bool  # for the recorded thread: give them again before this turn
    boundary: str | None  # the digest of the agent's last answer in the host's conversation
    segment: tuple[str, ...]  # the digests of the messages after it
    resumed: TurnInput  # the input on the recorded thread (what it has not had)
    fresh: TurnInput  # the input on a new thread (the whole segment)
    history: tuple[HistoryEntry, ...]  # the conversation before the segment, for a new thread

    def input(self, resuming: bool) -> TurnInput:
        return self.resumed if resuming else self.fresh

    @property
    def instructions_update(self) -> str | None:
        """The developer message that gives the recorded thread its changed instructions."""
        if not self.instructions_changed:
            return None
        if not self.instructions:
            return "The agent's earlier instructions no longer apply."
        return (
            "The agent's instructions have changed. From now on they are:\n\n" + self.instructions
        )

    def record(self, thread_id: str, *, open_: bool) -> Delivery:
        """What is true once a turn on ``thread_id`` has taken its input."""
        return Delivery(thread_id, self.boundary, self.segment, open_, self.instructions_digest)


def message_digest(message: ChatMessage) -> str:
    parts = [
        ["text", p.text] if isinstance(p, TextPart) else ["image", str(p.path or p.url)]
        for p in message.content
    ]
    data = json.dumps([message.role, message.name, parts], ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def _spoken(message: ChatMessage) -> str:
    text = message.text or ("[image]" if message.images else "")
    return f"{message.name}: {text}" if message.name else text


def _input(messages: Sequence[ChatMessage]) -> TurnInput:
    if not messages:
        return TurnInput(CONTINUE, (), 0)
    text = "\n\n".join(_spoken(m) for m in messages)
    images = tuple(image for m in messages for image in m.images)
    return TurnInput(text, images, len(messages))


def _history(messages: Sequence[ChatMessage], room: int) -> tuple[HistoryEntry, ...]:
    kept: list[HistoryEntry] = []
    used = 0
    for message in reversed(messages):
        if message.role not in ("user", "assistant"):
            continue
        entry = HistoryEntry(message.role, _spoken(message))
        if len(kept) >= HISTORY_MAX_MESSAGES or used + len(entry.text) > room:
            break
        kept.append(entry)
        used += len(entry.text)
    return tuple(reversed(kept))


def check_conversation(messages: Sequence[ChatMessage]) -> None:
    """InvalidRequestError where :func:`plan_turn` would refuse ``messages`` (nothing for codex
    to answer, or over its bounds): whatever the records say, so before a claim."""
    _shape(messages)


def _shape(
    messages: Sequence[ChatMessage],
) -> tuple[str, int, list[ChatMessage], TurnInput]:
    """The instructions, the index of the agent's last answer (-1: none), the user messages
    after it and their input; InvalidRequestError as :func:`check_conversation` says."""
    instructions = "\n\n".join(m.text for m in messages if m.role in ("system", "developer"))
    if len(instructions) > MAX_INSTRUCTIONS_CHARS:
        raise InvalidRequestError(
            f"the instructions (system and developer messages) are {len(instructions)} characters"
            f" long; at most {MAX_INSTRUCTIONS_CHARS}",
            field="messages",
        )
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    segment = [m for m in messages[last + 1 :] if m.role == "user"]
    if not segment:
        raise InvalidRequestError(
            "messages has no user message after the agent's last (assistant) message",
            field="messages",
        )
    fresh = _input(segment)
    if len(fresh.text) > MAX_PROMPT_CHARS:
        raise InvalidRequestError(
            f"the user messages are {len(fresh.text)} characters long; codex accepts at most"
            f" {MAX_PROMPT_CHARS}",
            field="messages",
        )
    return instructions, last, segment, fresh


def plan_turn(
    messages: Sequence[ChatMessage],
    record: Delivery | None,
    stored_thread: str | None,
    *,
    pending: bool = False,
) -> TurnPlan:
    """The plan of this turn (see the module docstring); InvalidRequestError if there is nothing
    for codex to answer or the input is over codex's bounds. ``pending``: the request came while
    the agent was busy (steered or queued), so its conversation cannot hold the answer of the
    turn that was running: what that turn took counts as taken even once it has answered."""
    instructions, last, segment, fresh = _shape(messages)
    boundary = message_digest(messages[last]) if last >= 0 else None
    digests = tuple(message_digest(m) for m in segment)
    ours = record is not None and stored_thread is not None and record.thread_id == stored_thread
    skip = 0
    if ours and record is not None and (record.open or pending) and record.boundary == boundary:
        while skip < min(len(digests), len(record.delivered)) and (
            digests[skip] == record.delivered[skip]
        ):
            skip += 1
    digest = (
        hashlib.sha256(instructions.encode("utf-8", "surrogatepass")).hexdigest()[:24]
        if instructions
        else None
    )
    known = record.instructions if ours and record is not None else None
    changed = digest != known and (digest is not None or known is not None)
    room = min(HISTORY_MAX_CHARS, MAX_PROMPT_CHARS - len(fresh.text) - 1000)
    return TurnPlan(
        instructions=instructions,
        instructions_digest=digest,
        instructions_changed=changed,
        boundary=boundary,
        segment=digests,
        resumed=_input(segment[skip:]),
        fresh=fresh,
        history=_history(messages[: last + 1], room),
    )
