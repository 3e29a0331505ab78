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
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._codex.binary import bundled_codex
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


DEMO_MODEL = "scripted-model"


def demo_state(workspace: Path) -> Path:
    """Where the demo of a workspace keeps its CODEX_HOME (its threads) between commands: under
    the user's state folder, outside the workspace (a confined agent sees no CODEX_HOME)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    key = hashlib.sha256(str(workspace).encode()).hexdigest()[:16]
    return Path(base) / "plexum-openai-provider" / "demo" / f"{workspace.name[:40]}-{key}"


def _model_catalog(binary: str | None) -> list[dict[str, Any]] | None:
    """codex's own model catalog (``codex debug models``) with an entry for the demo's model, so
    that codex does not warn on every turn that it has no metadata for it ("Model metadata for
    `scripted-model` not found. Defaulting to fallback metadata", 0.163-0.171). The entry is a
    copy of a catalog model that is offered plain tools, as the fallback is (no ``tool_mode``:
    0.163's newer models get code mode), without tool search (the host tools are then offered as
    a namespace, which the demo script looks for). None if codex cannot say, or has no such
    model (then codex warns, and the demo works all the same)."""
    path = binary or bundled_codex() or shutil.which("codex")
    if path is None:
        return None
    try:
        done = subprocess.run(
            [path, "debug", "models"], capture_output=True, timeout=20, stdin=subprocess.DEVNULL
        )
        models = json.loads(done.stdout)["models"]
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(models, list):
        return None
    plain = [m for m in models if isinstance(m, dict) and "tool_mode" not in m]
    if not plain:
        return None
    scripted = {
        **plain[-1],
        "slug": DEMO_MODEL,
        "display_name": DEMO_MODEL,
        "description": "The demo's scripted model (plexum-openai-provider-plugin --demo).",
        "supports_search_tool": False,
    }
    return [m for m in models if m.get("slug") != DEMO_MODEL] + [scripted]


@contextlib.contextmanager
def demo_environment(
    base_env: dict[str, str], *, workspace: Path | None = None, binary: str | None = None
) -> Iterator[DemoEnvironment]:
    """A scripted model on 127.0.0.1 and a CODEX_HOME of its own, for as long as the block runs.

    With a ``workspace``, the CODEX_HOME is the workspace's (:func:`demo_state`) and stays: the
    next demo command in that workspace resumes its thread. ``binary``: the codex that will run
    (its model catalog is given the demo model)."""
    with contextlib.ExitStack() as stack:
        if workspace is not None:
            root = demo_state(workspace)
        else:
            root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="plexum-demo-")))
        server = stack.enter_context(ScriptedModelServer(demo_script))
        home = root / "codex-home"
        catalog = _model_catalog(binary)
        extra = ""
        if catalog is not None:
            home.mkdir(parents=True, exist_ok=True)
            (home / "demo-models.json").write_text(json.dumps({"models": catalog}))
            extra = f"model_catalog_json = {json.dumps(str(home / 'demo-models.json'))}\n"
        # The server's port is new each time: the config is written anew, the sessions stay.
        write_codex_home(home, server.base_url, top_toml=extra)
        # codex runs shell tools in a login shell; the demo needs none of the user's.
        shell_home = root / "home"
        shell_home.mkdir(exist_ok=True)
        env = {**base_env, "CODEX_HOME": str(home), "HOME": str(shell_home)}
        # The plugin's records of the workspace (its thread id) stay with the demo's threads.
        env["PLEXUM_STATE_DIR"] = str(root / "state")
        # codex makes the folder of its sandbox helper (where the plugin's limits attach) only
        # for a CODEX_HOME outside the temporary folder: a temporary demo's is inside it, so
        # its codex gets a temporary folder of its own beside the CODEX_HOME.
        temporary = root / "tmp"
        temporary.mkdir(exist_ok=True)
        env["TMPDIR"] = str(temporary)
        env.pop("OPENAI_API_KEY", None)
        yield DemoEnvironment(server, home, env)
