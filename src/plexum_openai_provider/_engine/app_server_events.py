"""The notifications ``codex app-server`` sends about a turn, parsed forward-compatibly.

Pure: :class:`AppServerTurn` takes one turn's notifications (method, params) and gives seam
events; it never raises on what it does not know (that is :class:`~.._engine.seam.Other`). Shapes
as sent by codex 0.163 and 0.169 (``generate-json-schema --experimental``; recorded lines in
``tests/data/app-server-0.163-turn.jsonl``)::

    {"method":"item/started","params":{"threadId":…,"turnId":…,"item":{"type":"agentMessage",
                                        "id":"msg_4","text":"","phase":"final_answer"|null}}}
    {"method":"item/agentMessage/delta","params":{"threadId":…,"turnId":…,"itemId":"msg_4",
                                                  "delta":"Hel"}}
    {"method":"item/completed","params":{"threadId":…,"turnId":…,"item":{"type":"agentMessage",
                                          "id":"msg_4","text":"Hello","phase":…}}}
    {"method":"item/completed","params":{…,"item":{"type":"commandExecution","id":"call_2",…}}}
    {"method":"thread/tokenUsage/updated","params":{…,"turnId":…,"tokenUsage":{"total":{…},
                                                    "last":{"inputTokens":100,…}}}}
    {"method":"warning","params":{"threadId":…,"message":"Model metadata for …"}}
    {"method":"error","params":{…,"error":{"message":…,"codexErrorInfo":…},"willRetry":true}}
    {"method":"turn/completed","params":{"threadId":…,"turn":{"id":…,
                                         "status":"completed"|"failed"|"interrupted",
                                         "error":{"message":…}|null}}}

A turn's usage is the sum of the ``last`` figures of its ``tokenUsage`` notifications (one per
model response); a resumed thread first repeats the previous turn's, which carries that turn's id.
"""

from __future__ import annotations

from typing import Any

from ..events import Phase, Usage
from . import seam

__all__ = ["AppServerTurn"]

# Items whose completion may mean a tool call's block can be read from the rollout.
_MESSAGE = "agentMessage"
_NOT_TOOLS = frozenset({"userMessage", "reasoning", "plan", "hookPrompt"})


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class AppServerTurn:
    def __init__(self, thread_id: str, turn_id: str) -> None:
        self.thread_id = thread_id
        self.turn_id = turn_id
        self.ended = False
        self.thread_closed = False
        self._streamed: dict[str, str] = {}
        self._phases: dict[str, Phase] = {}  # a message's phase, from its item/started
        self._usage: Usage | None = None

    def feed(self, method: str, params: Any) -> list[seam.CodexEvent]:
        if not isinstance(params, dict):
            return [seam.Unparsed(f"app-server {method} without params")]
        turn = params.get("turnId")
        if isinstance(turn, str) and turn != self.turn_id:
            return [seam.Other(f"{method} of turn {turn}")]  # another (an earlier) turn's
        if method == "item/agentMessage/delta":
            item, delta = _str(params.get("itemId")), _str(params.get("delta"))
            self._streamed[item] = self._streamed.get(item, "") + delta
            return [seam.Text(delta, item, self._phases.get(item))] if delta else []
        if method == "item/started":
            return self._item_started(params.get("item"))
        if method == "item/completed":
            return self._item_completed(params.get("item"))
        if method == "thread/tokenUsage/updated":
            usage = params.get("tokenUsage")
            last = usage.get("last") if isinstance(usage, dict) else None
            if isinstance(last, dict):
                figure = Usage.from_wire(last)
                self._usage = figure if self._usage is None else self._usage.plus(figure)
            return []
        if method == "warning":
            return [seam.CodexWarning(_str(params.get("message")))]
        if method == "error":
            return [seam.CodexError(_error_text(params.get("error")))]
        if method == "turn/completed":
            return self._turn_completed(params.get("turn"))
        if method == "thread/closed":
            self.thread_closed = True
            return [seam.Other(method)]
        return [seam.Other(method)]

    def _item_completed(self, item: Any) -> list[seam.CodexEvent]:
        if not isinstance(item, dict):
            return [seam.Unparsed("item/completed without an item")]
        kind, item_id = _str(item.get("type")), _str(item.get("id"))
        if kind == _MESSAGE:
            # Deltas came first; the completed item has the whole text. Send what the deltas
            # did not (all of it when the model did not stream).
            self._note_phase(item)
            text, streamed = _str(item.get("text")), self._streamed.pop(item_id, "")
            rest = text[len(streamed) :] if text.startswith(streamed) else ""
            phase = self._phases.pop(item_id, None)
            return [seam.Text(rest, item_id, phase)] if rest else []
        if kind in _NOT_TOOLS:
            return [seam.Other(f"item/completed {kind}")]
        return [seam.ItemDone(item_id, kind)]

    def _item_started(self, item: Any) -> list[seam.CodexEvent]:
        if not isinstance(item, dict):
            return [seam.Unparsed("item/started without an item")]
        kind = _str(item.get("type"))
        if kind == _MESSAGE:
            self._note_phase(item)
        if kind == _MESSAGE or kind in _NOT_TOOLS:
            return [seam.Other(f"item/started {kind}")]
        return [seam.ItemStarted(_str(item.get("id")), kind)]

    def _note_phase(self, item: Any) -> None:
        if isinstance(item, dict) and item.get("type") == _MESSAGE:
            phase = item.get("phase")
            if phase == "commentary" or phase == "final_answer":  # not a later codex's others
                self._phases[_str(item.get("id"))] = phase

    def _turn_completed(self, turn: Any) -> list[seam.CodexEvent]:
        if not isinstance(turn, dict):
            return [seam.Unparsed("turn/completed without a turn")]
        if turn.get("id") != self.turn_id:
            return [seam.Other(f"turn/completed of turn {turn.get('id')}")]
        self.ended = True
        status = turn.get("status")
        error = turn.get("error")
        message = _error_text(error)
        if status == "completed":
            return [seam.TurnDone(self._usage or Usage(), "turn")]
        if status == "interrupted":
            return [seam.TurnInterrupted(message or "interrupted")]
        info = error.get("codexErrorInfo") if isinstance(error, dict) else None
        return [seam.TurnFailed(message or f"the turn ended {status}", info)]


def _error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return _str(error)
    message = _str(error.get("message"))
    details = _str(error.get("additionalDetails"))
    return f"{message} ({details})" if details and details not in message else message
