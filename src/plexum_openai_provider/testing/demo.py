"""The demo: a scripted model and host tools that show text, host tools and consume offline.

``chat --demo`` and ``run --demo`` start a :class:`ScriptedModelServer` with :func:`demo_script`
and an isolated CODEX_HOME, so a new user sees the whole loop within a minute, with no login and
no network. The demo model is deterministic:

* "note <text>" (or "save <text>"): it calls the host tool ``save_note`` (``chat`` offers it);
* "notes" (or "read"): it calls ``read_notes``;
* "remember" (or "history"): it tells what it was sent of earlier tool calls, so a consumed call
  shows up as the consume marker;
* "slowly <text>": it answers in pieces over two seconds (time to type a message that joins the
  running turn);
* "work": it thinks (a reasoning summary), makes a plan and runs a command that prints a line
  every 0.7 s (what ``chat`` shows of an agent at work);
* anything else: it answers with what it heard, the images that came with it, and how many
  messages the thread holds.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._codex.records import output_text
from .model_server import (
    FunctionCall,
    Message,
    Reasoning,
    Reply,
    ResponsesRequest,
    ScriptedModelServer,
    write_codex_home,
)

__all__ = ["DemoEnvironment", "demo_environment", "demo_script"]


def _host_namespace(request: ResponsesRequest, tool: str) -> str | None:
    for entry in request.body.get("tools") or []:
        if entry.get("type") == "namespace" and any(
            t.get("name") == tool for t in entry.get("tools") or []
        ):
            return str(entry.get("name"))
    return None


def _output_text(item: dict[str, Any]) -> str:
    """A tool output as the model got it, without codex's "Wall time: …\nOutput:" header."""
    text = output_text(item.get("output"))
    head, sep, rest = text.partition("Output:\n")
    return rest if sep and head.startswith("Wall time") else text


def _said(request: ResponsesRequest) -> str:
    """The text of the last user message, without the ``<image …>``/``</image>`` parts codex
    wraps a local image in (0.163)."""
    users = [i for i in request.input if i.get("type") == "message" and i.get("role") == "user"]
    parts = users[-1].get("content") or [] if users else []
    texts = [
        str(p.get("text", ""))
        for p in parts
        if isinstance(p, dict)
        and p.get("type") == "input_text"
        and not str(p.get("text", "")).startswith(("<image", "</image>"))
    ]
    return "\n".join(texts)


def demo_script(request: ResponsesRequest) -> Reply:
    text = _said(request).strip()
    lowered = text.lower()
    outputs = request.items_of_type("function_call_output")
    last_item = request.input[-1] if request.input else {}
    if last_item.get("type") == "function_call_output":  # a tool just answered: say what it said
        return Message(f"The tool answered: {_output_text(last_item).strip()[-300:]}")
    for keyword, tool in (("note ", "save_note"), ("save ", "save_note")):
        if lowered.startswith(keyword):
            namespace = _host_namespace(request, tool)
            if namespace:
                note = text[len(keyword) :]
                return FunctionCall(tool, json.dumps({"text": note}), namespace=namespace)
    if lowered in ("notes", "read", "read notes"):
        namespace = _host_namespace(request, "read_notes")
        if namespace:
            return FunctionCall("read_notes", "{}", namespace=namespace)
    if lowered == "work":
        plan = {
            "explanation": "count, then report",
            "plan": [
                {"step": "count to three", "status": "in_progress"},
                {"step": "report", "status": "pending"},
            ],
        }
        command = "for i in 1 2 3; do echo step $i; sleep 0.7; done"
        return [
            Reasoning(("Counting first, then a report.",)),
            FunctionCall("update_plan", json.dumps(plan)),
            FunctionCall("exec_command", json.dumps({"cmd": command})),
        ]
    if lowered.startswith("slowly "):
        pieces = ("(demo model) Slowly, ", "one, ", "two, ", "three.")
        return Message("".join(pieces), deltas=pieces, delay_s=0.6)
    if lowered in ("remember", "history", "what do you remember?"):
        calls = request.items_of_type("function_call")
        if not calls:
            return Message("I was sent no earlier tool calls.")
        lines = [
            f"- {c.get('name')} {c.get('arguments')} → {_output_text(o).strip()[-80:]!r}"
            for c, o in zip(calls, outputs, strict=False)
        ]
        return Message("Earlier tool calls I was sent:\n" + "\n".join(lines))
    # codex sends its own context as user messages too (<environment_context>…): not the user's.
    count = sum(1 for t in request.user_texts() if not t.startswith("<"))
    last = last_item.get("content") if last_item.get("role") == "user" else None
    images = sum(1 for p in last or [] if isinstance(p, dict) and p.get("type") == "input_image")
    seen = f" I see {images} image(s)." if images else ""
    return Message(
        f"(demo model) You said: {text!r}.{seen} Messages from you in this thread: {count}."
    )


@dataclass
class DemoEnvironment:
    server: ScriptedModelServer
    codex_home: Path
    env: dict[str, str]


@contextlib.contextmanager
def demo_environment(base_env: dict[str, str]) -> Iterator[DemoEnvironment]:
    """A scripted model on 127.0.0.1 and a CODEX_HOME of its own, for as long as the block runs."""
    with (
        tempfile.TemporaryDirectory(prefix="plexum-demo-") as tmp,
        ScriptedModelServer(demo_script) as server,
    ):
        home = Path(tmp) / "codex-home"
        write_codex_home(home, server.base_url)
        # codex runs shell tools in a login shell; the demo needs none of the user's.
        shell_home = Path(tmp) / "home"
        shell_home.mkdir()
        env = {**base_env, "CODEX_HOME": str(home), "HOME": str(shell_home)}
        env.pop("OPENAI_API_KEY", None)
        yield DemoEnvironment(server, home, env)
