"""What codex's sub-agents did during a ``codex exec`` run, read from their rollouts.

codex exec reports only its own thread's items; a sub-agent (``codex_features`` turned
``multi_agent``/``multi_agent_v2`` on) is a thread of its own, with a rollout of its own in the
same day folder, whose ``session_meta`` names its parent (codex 0.163-0.171)::

    {"type":"session_meta","payload":{"id":<its thread>,"parent_thread_id":<the agent's>,
        "agent_path":"/root/helper","thread_source":"subagent",…}}

Its assistant messages and its tool calls with their outputs, recorded since the run began, are
the run's too (a sub-agent's own sub-agents included).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from .records import OUTPUT_TYPES, RESPONSE_ITEM
from .rollout import BlockCollector, read_records

__all__ = ["SubAgentBlock", "SubAgentMessage", "sub_agent_work"]


@dataclass(frozen=True)
class SubAgentMessage:
    sub_agent: str
    item_id: str
    text: str


@dataclass(frozen=True)
class SubAgentBlock:
    sub_agent: str
    call_id: str
    name: str
    arguments: str
    namespace: str | None
    output: str
    is_error: bool


def _meta(path: Path) -> dict[str, object] | None:
    try:
        with path.open("rb") as f:
            first = json.loads(f.readline())
    except (OSError, ValueError):
        return None
    payload = first.get("payload") if isinstance(first, dict) else None
    return payload if isinstance(payload, dict) else None


def _recent_rollouts(codex_home: Path, since: float) -> list[Path]:
    """Rollouts written to since ``since`` (a time.time()), in the day folders a run of now
    writes (yesterday, today, tomorrow: UTC), oldest name first."""
    sessions = codex_home / "sessions"
    today = dt.datetime.now(dt.UTC).date()
    found = []
    for days in (-1, 0, 1):
        day = today + dt.timedelta(days=days)
        folder = sessions / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
        for path in folder.glob("rollout-*.jsonl"):
            try:
                if path.stat().st_mtime >= since:
                    found.append(path)
            except OSError:
                continue
    return sorted(found, key=lambda p: p.name)


def sub_agent_work(
    codex_home: Path, thread_id: str, since: float
) -> list[SubAgentMessage | SubAgentBlock]:
    """The messages and completed tool calls the sub-agents of ``thread_id`` recorded since
    ``since`` (a time.time()), each sub-agent's in order."""
    since_iso = dt.datetime.fromtimestamp(since, dt.UTC).isoformat(timespec="milliseconds")[:23]
    parents = {thread_id}
    out: list[SubAgentMessage | SubAgentBlock] = []
    for path in _recent_rollouts(codex_home, since):
        meta = _meta(path)
        if meta is None or meta.get("parent_thread_id") not in parents:
            continue
        child = str(meta.get("id"))
        parents.add(child)
        agent = str(meta.get("agent_path") or meta.get("agent_nickname") or child)
        collector = BlockCollector()
        for record in read_records(path):
            if str(record.data.get("timestamp", ""))[:23] < since_iso:
                continue
            collector.add(record)
            payload = record.data.get("payload")
            if record.data.get("type") != RESPONSE_ITEM or not isinstance(payload, dict):
                continue
            if payload.get("type") == "message" and payload.get("role") == "assistant":
                text = "".join(
                    str(part.get("text", ""))
                    for part in payload.get("content") or []
                    if isinstance(part, dict)
                )
                if text:
                    out.append(SubAgentMessage(agent, str(payload.get("id", "")), text))
            elif payload.get("type") in OUTPUT_TYPES:
                for block in collector.take_completed():
                    out.append(
                        SubAgentBlock(
                            agent,
                            block.call_id,
                            block.name,
                            block.arguments,
                            block.namespace,
                            block.output or "",
                            block.is_error,
                        )
                    )
    return out
