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
                                         "error":{"message":…}|null,"durationMs":5337}}}

What the agent is doing meanwhile (the same fields on 0.163 and 0.171, ``generate-json-schema
--experimental``; recorded in ``tests/data/app-server-0.163-activity.jsonl``)::

    {"method":"item/started","params":{…,"item":{"type":"commandExecution","id":"call_cmd",
                                        "command":"/bin/bash -lc '…'","status":"inProgress",…}}}
    {"method":"item/commandExecution/outputDelta","params":{…,"itemId":"call_cmd",
                                                            "delta":"line 2\n"}}
    {"method":"item/reasoning/summaryTextDelta","params":{…,"itemId":"rs_2","summaryIndex":0,
                                                          "delta":"Counting lines first."}}
    {"method":"turn/plan/updated","params":{…,"explanation":"two steps"|null,
                                  "plan":[{"step":"count","status":"inProgress"},…]}}
    {"method":"item/completed","params":{…,"item":{"type":"fileChange","id":"call_p",
        "status":"completed","changes":[{"path":"/ws/a.txt","diff":"…",
                                         "kind":{"type":"add"|"delete"|"update",
                                                 "move_path":null}}]}}}
    thread/tokenUsage/updated's tokenUsage also has "modelContextWindow": 258400

A command item's id is its call id (``call_cmd`` above): the same id the rollout records, so a
running command's output carries the block id of the call's later ``tool_call``. codex 0.163 may
send a command's first output only with the item's completion (it did not stream the first line
of a command in one run of two): the full output is always in the call's result.

A codex sub-agent (``codex_features`` turned ``multi_agent``/``multi_agent_v2`` on) is a thread of
its own; the parent's ``item/started`` of a ``subAgentActivity`` names it (0.163-0.171, recorded in
``tests/data/app-server-0.171-sub-agent.jsonl``), and :class:`SubAgentItems` reads its
notifications as the parent turn's events, marked with the sub-agent::

    {"method":"item/started","params":{"threadId":<parent>,"item":{"type":"subAgentActivity",
        "id":"spawn1","agentThreadId":<child>,"agentPath":"/root/helper",…}}}
    {"method":"item/completed","params":{"threadId":<child>,"item":{"type":"mcpToolCall",
        "id":…,"server":"plexum-host-cx","tool":"get_weather","arguments":{…},
        "result":{"content":[{"type":"text","text":…}]},"error":null,"status":"completed"}}}

A turn's usage is the sum of the ``last`` figures of its ``tokenUsage`` notifications (one per
model response); a resumed thread first repeats the previous turn's, which carries that turn's id.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..events import FileChange, Phase, PlanStep, Usage
from . import seam

__all__ = ["AppServerTurn", "SubAgentItems", "diff_counts", "sub_agents_named"]

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
        self.completed = False  # codex ended it ``completed`` (not interrupted, not failed)
        self.thread_closed = False
        # An item that may have started a process (a command, a patch, a tool; any kind this
        # module does not know): only such a turn can have left one running.
        self.tools_ran = False
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
        if method == "item/commandExecution/outputDelta":
            delta = _str(params.get("delta"))
            return [seam.OutputDelta(_str(params.get("itemId")), delta)] if delta else []
        if method == "item/reasoning/summaryTextDelta":
            delta = _str(params.get("delta"))
            index = params.get("summaryIndex")
            summary = f"{_str(params.get('itemId'))}/{index if isinstance(index, int) else 0}"
            return [seam.Reasoning(summary, delta)] if delta else []
        if method == "turn/plan/updated":
            return [_plan(params)]
        if method == "thread/tokenUsage/updated":
            usage = params.get("tokenUsage")
            last = usage.get("last") if isinstance(usage, dict) else None
            if isinstance(last, dict):
                figure = Usage.from_wire(last)
                self._usage = figure if self._usage is None else self._usage.plus(figure)
                window = usage.get("modelContextWindow") if isinstance(usage, dict) else None
                tokens = last.get("totalTokens")
                if not isinstance(tokens, int):
                    tokens = figure.input_tokens + figure.output_tokens
                return [seam.ContextUsage(tokens, window if isinstance(window, int) else None)]
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
        self.tools_ran = True
        if kind == "fileChange" and item.get("status") == "completed":
            changes = _changes(item.get("changes"))
            return [seam.FilesChanged(item_id, changes, item_id), seam.ItemDone(item_id, kind)]
        return [seam.ItemDone(item_id, kind)]

    def _item_started(self, item: Any) -> list[seam.CodexEvent]:
        if not isinstance(item, dict):
            self.tools_ran = True  # not known: as if it were one
            return [seam.Unparsed("item/started without an item")]
        kind = _str(item.get("type"))
        if kind == _MESSAGE:
            self._note_phase(item)
        if kind == _MESSAGE or kind in _NOT_TOOLS:
            return [seam.Other(f"item/started {kind}")]
        self.tools_ran = True
        item_id = _str(item.get("id"))
        return [seam.ItemStarted(item_id, kind, item_id)]

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
        duration = turn.get("durationMs")
        if status == "completed":
            self.completed = True
            ms = duration if isinstance(duration, int) and not isinstance(duration, bool) else None
            return [seam.TurnDone(self._usage or Usage(), "turn", ms)]
        if status == "interrupted":
            return [seam.TurnInterrupted(message or "interrupted")]
        info = error.get("codexErrorInfo") if isinstance(error, dict) else None
        return [seam.TurnFailed(message or f"the turn ended {status}", info)]


_STEP_STATUS = {"pending": "pending", "inProgress": "in_progress", "completed": "completed"}


def _plan(params: dict[str, Any]) -> seam.PlanUpdated:
    steps = []
    for entry in params.get("plan") or ():
        if isinstance(entry, dict):
            status = _STEP_STATUS.get(_str(entry.get("status")), "pending")
            steps.append(PlanStep(_str(entry.get("step")), status))  # type: ignore[arg-type]
    explanation = params.get("explanation")
    return seam.PlanUpdated(tuple(steps), explanation if isinstance(explanation, str) else None)


def _changes(changes: Any) -> tuple[FileChange, ...]:
    out = []
    for change in changes if isinstance(changes, list) else ():
        if not isinstance(change, dict):
            continue
        kind_info = change.get("kind")
        kind = _str(kind_info.get("type")) if isinstance(kind_info, dict) else ""
        if kind not in ("add", "delete", "update"):
            continue
        move = kind_info.get("move_path") if isinstance(kind_info, dict) else None
        added, removed = diff_counts(kind, _str(change.get("diff")))
        out.append(
            FileChange(
                _str(change.get("path")),
                kind,  # type: ignore[arg-type]
                added,
                removed,
                move if isinstance(move, str) else None,
            )
        )
    return tuple(out)


def diff_counts(kind: str, diff: str) -> tuple[int, int]:
    """Lines added and removed: codex 0.163-0.171 give an added or deleted file's content as its
    ``diff``, and an updated file's unified diff."""
    lines = diff.splitlines()
    if kind == "add":
        return len(lines), 0
    if kind == "delete":
        return 0, len(lines)
    added = sum(1 for line in lines if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in lines if line.startswith("-") and not line.startswith("---"))
    return added, removed


def _error_text(error: Any) -> str:
    if not isinstance(error, dict):
        return _str(error)
    message = _str(error.get("message"))
    details = _str(error.get("additionalDetails"))
    return f"{message} ({details})" if details and details not in message else message


def sub_agents_named(item: Any) -> dict[str, str]:
    """The sub-agents a parent's item names: thread id → its path (``subAgentActivity``; a
    ``collabAgentToolCall`` of multi-agent v1 names only the threads)."""
    if not isinstance(item, dict):
        return {}
    if item.get("type") == "subAgentActivity":
        thread = item.get("agentThreadId")
        if isinstance(thread, str):
            return {thread: _str(item.get("agentPath")) or thread}
    if item.get("type") == "collabAgentToolCall":
        threads = item.get("receiverThreadIds")
        return {t: t for t in threads if isinstance(t, str)} if isinstance(threads, list) else {}
    return {}


class SubAgentItems:
    """A sub-agent's messages and tool calls, from its thread's notifications: text as it is
    written, a tool call with its result when it completes. Its turn's start, end and usage are
    its own (the parent's turn does not end with them)."""

    def __init__(self) -> None:
        self._streamed: dict[tuple[str, str], str] = {}

    def feed(self, agent: str, method: str, params: Any) -> list[seam.CodexEvent]:
        if not isinstance(params, dict):
            return []
        if method == "item/agentMessage/delta":
            message, delta = _str(params.get("itemId")), _str(params.get("delta"))
            key = (agent, message)
            self._streamed[key] = self._streamed.get(key, "") + delta
            return [seam.Text(delta, message, None, agent)] if delta else []
        item = params.get("item")
        if method != "item/completed" or not isinstance(item, dict):
            return [seam.Other(f"sub-agent {method}")]
        kind, item_id = _str(item.get("type")), _str(item.get("id"))
        if kind == _MESSAGE:
            text, streamed = _str(item.get("text")), self._streamed.pop((agent, item_id), "")
            rest = text[len(streamed) :] if text.startswith(streamed) else ""
            return [seam.Text(rest, item_id, None, agent)] if rest else []
        if kind == "mcpToolCall":
            output, failed = _mcp_result(item)
            namespace = "mcp__" + re.sub(r"[^A-Za-z0-9_]", "_", _str(item.get("server")))
            arguments = json.dumps(item.get("arguments"), ensure_ascii=False)
            call = (_str(item.get("tool")), arguments, namespace)
            return [seam.SubAgentTool(agent, item_id, *call, output, failed)]
        if kind == "commandExecution":
            code = item.get("exitCode")
            arguments = json.dumps({"cmd": _str(item.get("command"))}, ensure_ascii=False)
            output = _str(item.get("aggregatedOutput"))
            failed = item.get("status") == "failed" or (isinstance(code, int) and code != 0)
            return [
                seam.SubAgentTool(agent, item_id, "exec_command", arguments, None, output, failed)
            ]
        return [seam.Other(f"sub-agent item {kind}")]


def _mcp_result(item: dict[str, Any]) -> tuple[str, bool]:
    """(the text of an MCP call's result, whether it failed)."""
    error = item.get("error")
    if isinstance(error, dict):
        return _str(error.get("message")), True
    result = item.get("result")
    content = result.get("content") if isinstance(result, dict) else None
    texts = [
        _str(part.get("text")) if part.get("type") == "text" else json.dumps(part)
        for part in content or []
        if isinstance(part, dict)
    ]
    failed = item.get("status") == "failed" or (
        isinstance(result, dict) and result.get("isError") is True
    )
    return "\n".join(texts), failed
