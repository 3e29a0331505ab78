"""Can the app-server engine drive this codex? A probe of what the engine relies on, not a list of
versions: codex ships often (npm had 0.164 to 0.171 within weeks of the bundled 0.163), and a user
who installs the newest should get the fast engine as soon as it has what the engine uses.

What is probed, and why each piece:

* **the version**: 0.163.0 or later (older app-servers lack ``thread/inject_items``, permission
  profiles and the writer lock; the exec engine runs them);
* **the schema** (``codex app-server generate-json-schema --experimental``): the methods the
  engine calls, the notifications it reads, the fields of their params and of the items it maps
  (an ``agentMessage`` item's ``id`` and ``text``, a turn's ``status``), the input item types it
  sends (``text``, ``image``) and the turn statuses it understands; a codex that
  renamed one would leave the engine waiting for events that never come;
* **a live thread** (:func:`probe_live`, on the engine's own app-server, once at start): a
  ``thread/start`` gives a thread whose rollout path is where the rollout reader looks for it and
  whose writer lock codex holds while it is loaded and gives back when it is unloaded: what a
  consume's safety rests on (a thread's rollout is only rewritten once nobody writes it). The
  thread never has a turn, so it leaves no rollout behind. The rollout's own format is checked by
  every consume before it writes (a format it does not understand is left untouched).

:data:`VERIFIED_VERSIONS` are the versions the whole end-to-end suite passed on (``tools/check-codex``);
a version newer than those is reported, not refused.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import re
import shutil
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from .._codex.guard import run_briefly
from .._codex.writer_lock import is_thread_writer_locked

__all__ = [
    "OLDEST",
    "VERIFIED_VERSIONS",
    "parse_version",
    "probe_live",
    "read_schema",
    "schema_gaps",
]

# The codex versions the end-to-end suite passed on, both engines (tools/check-codex).
VERIFIED_VERSIONS = frozenset({"0.163.0", "0.169.0", "0.171.0"})
OLDEST = (0, 163, 0)

METHODS = (
    "initialize",
    "config/read",
    "thread/start",
    "thread/resume",
    "thread/unsubscribe",
    "thread/inject_items",
    "thread/backgroundTerminals/clean",
    "turn/start",
    "turn/steer",
    "turn/interrupt",
)
NOTIFICATIONS = (
    "item/agentMessage/delta",
    "item/completed",
    "thread/tokenUsage/updated",
    "turn/completed",
    "thread/closed",
    "error",
    "warning",
)
FIELDS = {
    "ThreadStartParams": ("cwd", "approvalPolicy", "sandbox", "permissions", "config"),
    "ThreadResumeParams": ("threadId", "cwd", "approvalPolicy", "permissions", "config"),
    "TurnStartParams": ("threadId", "input", "model"),
    "TurnSteerParams": ("threadId", "expectedTurnId", "input"),
    "ThreadInjectItemsParams": ("threadId", "items"),
    "ItemCompletedNotification": ("threadId", "turnId", "item"),
    "AgentMessageDeltaNotification": ("turnId", "itemId", "delta"),
    "TurnCompletedNotification": ("threadId", "turn"),
    "Turn": ("id", "status", "error"),
    "TurnError": ("message",),
}
ITEMS = {"agentMessage": ("id", "text")}
INPUTS = ("text", "image")  # images go as data: URLs (see app_server._items)
STATUSES = ("completed", "failed", "interrupted")
_SCHEMA_TIMEOUT_S = 30.0


def parse_version(version: str) -> tuple[int, ...] | None:
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version)
    return tuple(int(x) for x in match.groups()) if match else None


def _methods(union: Any) -> set[str]:
    out: set[str] = set()
    for variant in (union or {}).get("oneOf", []):
        method = (variant.get("properties") or {}).get("method") or {}
        out.update(method.get("enum") or [])
    return out


def _variants(definition: Any) -> dict[str, set[str]]:
    """A tagged union's variants: their ``type`` → their property names."""
    out: dict[str, set[str]] = {}
    for variant in (definition or {}).get("oneOf", []):
        props = variant.get("properties") or {}
        for tag in (props.get("type") or {}).get("enum") or []:
            out[tag] = set(props)
    return out


def schema_gaps(
    definitions: Mapping[str, Any], requests: Mapping[str, Any], notifications: Mapping[str, Any]
) -> list[str]:
    """What the engine relies on that the schema lacks (empty: everything is there). Pure."""
    gaps = [f"method {m}" for m in METHODS if m not in _methods(requests)]
    gaps += [f"notification {n}" for n in NOTIFICATIONS if n not in _methods(notifications)]
    for name, fields in FIELDS.items():
        props = set((definitions.get(name) or {}).get("properties") or {})
        gaps += [f"{name}.{f}" for f in fields if f not in props]
    items = _variants(definitions.get("ThreadItem"))
    for kind, fields in ITEMS.items():
        gaps += [f"{kind} item.{f}" for f in fields if f not in items.get(kind, set())]
    inputs = _variants(definitions.get("UserInput"))
    gaps += [f"input item {kind}" for kind in INPUTS if kind not in inputs]
    statuses = set((definitions.get("TurnStatus") or {}).get("enum") or [])
    gaps += [f"turn status {s}" for s in STATUSES if s not in statuses]
    return gaps


async def read_schema(
    binary: str, env: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the v2 definitions, the client requests, the server notifications) codex prints; OSError
    or ValueError when it cannot."""
    folder = tempfile.mkdtemp(prefix="plexum-schema-")
    try:
        argv = [binary, "app-server", "generate-json-schema", "--experimental", "--out", folder]
        done = await run_briefly(argv, timeout=_SCHEMA_TIMEOUT_S, env=env)
        if done.returncode is None:
            raise ValueError(f"it did not finish in {_SCHEMA_TIMEOUT_S:g} s")
        if done.returncode != 0:
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise ValueError(f"it exited with {done.returncode}: {tail[0][:300]}")
        return await asyncio.to_thread(_load, Path(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _load(folder: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    bundle = json.loads((folder / "codex_app_server_protocol.v2.schemas.json").read_text())
    requests = json.loads((folder / "ClientRequest.json").read_text())
    notifications = json.loads((folder / "ServerNotification.json").read_text())
    return bundle.get("definitions") or {}, requests, notifications


async def probe_live(
    call: Callable[[str, Any], Awaitable[Any]],
    unload: Callable[[str], Awaitable[None]],
    codex_home: Path,
) -> list[str]:
    """Start a thread (no turn: it leaves no rollout) and unload it: what is missing of its id,
    its rollout path and codex's writer lock, held while it is loaded and given back after."""
    folder = tempfile.mkdtemp(prefix="plexum-probe-")
    gaps: list[str] = []
    try:
        answer = await call(
            "thread/start",
            {
                "cwd": folder,
                "approvalPolicy": "never",
                "sandbox": "danger-full-access",
                # It runs no command: no snapshot of the login shell (codex 0.171 takes one as a
                # thread starts; it would run on, and hold pyenv's lock, as the first turn starts).
                "config": {"features.shell_snapshot": False},
            },
        )
        thread = answer.get("thread") if isinstance(answer, dict) else None
        thread_id = thread.get("id") if isinstance(thread, dict) else None
        try:
            uuid.UUID(str(thread_id))
        except ValueError:
            return [f"thread/start gave no thread id ({answer!r:.200})"]
        assert isinstance(thread, dict) and isinstance(thread_id, str)
        path = Path(str(thread.get("path") or ""))
        sessions = codex_home / "sessions"
        if not (
            path.parent.parent.parent.parent == sessions
            and fnmatch.fnmatch(path.name, f"rollout-*{thread_id}.jsonl")
        ):
            gaps.append(f"a thread's rollout under {sessions}/YYYY/MM/DD (codex said {path})")
        if not is_thread_writer_locked(codex_home, thread_id):
            gaps.append("codex's writer lock of a loaded thread")
        await unload(thread_id)
        if is_thread_writer_locked(codex_home, thread_id):
            gaps.append("codex's writer lock given back when the thread unloads")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return gaps
