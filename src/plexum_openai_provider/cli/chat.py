"""``plexum-openai-provider-plugin chat``: talk to an agent by hand, through the real plugin process.

It is a small host: it spawns the plugin (so the real protocol is exercised), offers demo host
tools (notes the agent can save and read), prints text, tool calls and results as they are
reported and each turn's usage, and keeps the blocks of the session the way a host keeps them, in
``<workspace>/.plexum-chat/dynamic.jsonl``. Commands: ``/blocks``, ``/consume ID…``, ``/image PATH``
(sent with the next message), ``/reset``, ``/quit``; ``--system`` gives the agent instructions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from .._jsonrpc import JsonRpcError
from .._turn.records import default_state_dir, records_dir
from .._turn.thread_store import clear_thread_id
from ..config import load_config_file, read_config_file
from ..errors import ProviderError
from ..events import ACTIVITY_TYPES, ErrorEvent, Notice, TextDelta, ToolCall, ToolResult, Usage
from ..plugin.client import PluginClient
from ..requests import AgentContext, ToolSpec
from .activity_view import ActivityView
from .notes import NOTES_TOOLS, NotesTools
from .run import EXIT_CANCELLED, instructions_arg, login_warning

__all__ = ["chat_command"]

HELP = """commands: /blocks (tool-call blocks so far)  /consume ID…  /image PATH (with the next message)
          /retry (send again a message that was refused)  /reset (forget the thread)  /quit
          //text sends "/text" (a message that starts with /)
try: "note buy milk", "notes", "remember", "work" (an agent at work), "slowly count" (type while it
answers: your line joins its turn); Ctrl-C cancels a running turn (the chat goes on); at the
prompt Ctrl-C or Ctrl-D ends"""


class BlockLog:
    """The host's record of blocks: one JSON line per tool call, result and consume."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def blocks(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return out
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            block = out.setdefault(record.get("block_id", ""), {"consumed": False})
            if record.get("kind") == "consume":
                block["consumed"] = True
            else:
                block.update({k: v for k, v in record.items() if k != "kind"})
        return out


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Chat:
    def __init__(
        self,
        plugin: PluginClient,
        agent: AgentContext,
        log: BlockLog,
        *,
        demo: bool = False,
        system: str | None = None,
        state_dir: Path | None = None,
        model: str | None = None,
        effort: str | None = None,
    ) -> None:
        self.plugin = plugin
        self.state_dir = state_dir  # the plugin's (where it records the agent's thread)
        self.demo = demo
        self.system = system
        self.model, self.effort = model, effort  # every turn's (None: the plugin's default)
        self.images: list[str] = []  # attached with /image, sent with the next message
        self.unsent: str | None = None  # a message the plugin refused (/retry sends it again)
        self.running: str | None = None  # the turn Ctrl-C cancels (one of its own, not a steer)
        self.cancels: set[asyncio.Task[None]] = set()
        self.agent = agent
        self.log = log
        self.turns = 0
        self.streaming = False
        self.view = ActivityView()  # the running command, the plan, reasoning (dimmed)
        self.tools = [ToolSpec(t["name"], t["description"], t["input_schema"]) for t in NOTES_TOOLS]

    async def turn(self, message: str, *, busy: bool = False) -> None:
        """One message: a turn of its own, or (``busy``: the agent is answering) a steer into the
        running turn, which codex exec cannot take: then it runs next."""
        self.turns += 1
        turn_id = f"chat-{os.getpid()}-{self.turns}"
        images, self.images = self.images, []
        turn = self.plugin.start_turn(
            turn_id,
            self.agent,
            message,
            model=self.model,
            effort=self.effort,
            tools=self.tools,
            images=images,
            system=self.system,
            when_busy="steer" if busy else None,
        )
        if busy:
            self.end_text()
            _say("  [sent while the agent answers: it joins the running turn, or runs next]")
        if not busy:  # Ctrl-C cancels it (a steer joins it)
            self.running = turn_id
        try:
            async for event in turn:
                self.show(event, turn_id)
            self.end_text()
            result = await turn.result()
        except JsonRpcError as exc:
            _say(f"  [refused] {exc.message}")
            self.unsent = message
            _say(
                "  your message was not sent; /retry sends it again (with the images attached by then)"
            )
            return
        finally:
            if self.running == turn_id:
                self.running = None
        if result.status == "steered":
            _say(f"  [it joined the running turn {result.into}]")
        elif result.status != "completed":
            _say(f"  [turn {result.status}]")

    def interrupt(self) -> bool:
        """Ctrl-C: cancel the running turn through the protocol (True), or False if none runs."""
        turn_id = self.running
        if turn_id is None:
            return False
        self.view.clear()
        self.end_text()
        _say("  [cancelling the turn]")
        task = asyncio.ensure_future(self.plugin.cancel(turn_id))
        self.cancels.add(task)
        task.add_done_callback(self.cancels.discard)
        return True

    def end_text(self) -> None:
        """End the answer's line, if one is open (the answer streams in pieces)."""
        if self.streaming:
            self.streaming = False
            _say("")

    def show(self, event: object, turn_id: str) -> None:
        if not isinstance(event, TextDelta):
            self.end_text()
        if self.view.show(event):
            return
        if isinstance(event, TextDelta):
            if not self.streaming:
                sys.stdout.write("codex> ")
                self.streaming = True
            sys.stdout.write(event.text)
            sys.stdout.flush()
            return
        self.end_text()
        if isinstance(event, ToolCall):
            _say(f"  [tool call {event.block_id}] {event.name} {event.arguments}")
            self.log.append(
                {
                    "kind": "call",
                    "turn_id": turn_id,
                    "block_id": event.block_id,
                    "name": event.name,
                    "arguments": event.arguments,
                }
            )
        elif isinstance(event, ToolResult):
            flag = " (error)" if event.is_error else ""
            _say(f"  [tool result {event.block_id}]{flag} {event.output.strip()[:200]}")
            self.log.append(
                {
                    "kind": "result",
                    "turn_id": turn_id,
                    "block_id": event.block_id,
                    "output": event.output,
                    "is_error": event.is_error,
                }
            )
        elif isinstance(event, Usage):
            _say(
                f"  [usage] input {event.input_tokens} (cached {event.cached_input_tokens}),"
                f" output {event.output_tokens} (reasoning {event.reasoning_output_tokens})"
            )
        elif isinstance(event, Notice):
            _say(f"  [notice {event.code}] {event.message}")
        elif isinstance(event, ErrorEvent):
            _say(f"  [error {event.code}] {event.message}")

    def show_blocks(self) -> None:
        blocks = self.log.blocks()
        if not blocks:
            _say("  no blocks yet")
        for block_id, block in blocks.items():
            state = "consumed" if block.get("consumed") else f"{len(block.get('output', ''))} chars"
            _say(f"  {block_id}  {block.get('name', '?')}  ({state})")

    def attach(self, path: str) -> None:
        if not path:
            _say("  usage: /image PATH   (the image goes with your next message)")
            return
        image = Path(path).expanduser().absolute()
        if not image.is_file():
            _say(f"  no such file: {image}")
            return
        self.images.append(str(image))
        _say(f"  [image attached: {image}; it goes with your next message]")

    async def consume(self, ids: list[str]) -> None:
        if not ids:
            _say("  usage: /consume BLOCK_ID…   (see /blocks)")
            return
        try:
            answer = await self.plugin.consume(self.agent, ids)
        except JsonRpcError as exc:
            _say(f"  [consume failed] {exc.message}")
            return
        for block_id in answer["consumed"]:
            self.log.append({"kind": "consume", "block_id": block_id})
        _say(
            f"  consumed: {', '.join(answer['consumed']) or '-'}; not found:"
            f" {', '.join(answer['not_found']) or '-'}"
        )

    async def loop(self) -> None:
        """Lines are read while the agent answers: a message typed then steers its turn. Ctrl-C
        cancels the running turn; at the prompt it ends the chat, as Ctrl-D (end of input) does."""
        lines = _read_lines()
        answering: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            if not self.interrupt():
                lines.put_nowait(None)

        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGINT, interrupt)
        sys.stdout.write("you> ")
        sys.stdout.flush()
        while (line := await lines.get()) is not None:
            if line.strip() in ("/quit", "/exit"):
                break
            await self.command(line, answering)
            if not answering:
                sys.stdout.write("you> ")
                sys.stdout.flush()
        else:
            _say("")  # Ctrl-C or Ctrl-D at the prompt: the shell's prompt on a line of its own
        if answering:
            await asyncio.gather(*answering)
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)

    async def command(self, line: str, answering: set[asyncio.Task[None]]) -> None:
        words = line.strip().split()
        if not words:
            return
        if line.lstrip().startswith("//"):  # "//etc/passwd: what is it?" sends "/etc/passwd: …"
            self.send(line.lstrip()[1:], answering)
        elif words[0] == "/retry":
            if self.unsent is None:
                _say("  nothing to send again")
            else:
                message, self.unsent = self.unsent, None
                self.send(message, answering)
        elif words[0] == "/blocks":
            self.show_blocks()
        elif words[0] == "/consume":
            await self.consume(words[1:])
        elif words[0] == "/image":
            self.attach(line.strip()[len("/image") :].strip())
        elif words[0] == "/reset":
            cleared = self.state_dir is not None and clear_thread_id(
                records_dir(self.state_dir, self.agent.workspace)
            )
            _say(
                "  thread forgotten: the next turn starts a new one"
                if cleared
                else "  no thread yet"
            )
        elif words[0] == "/help":
            _say(HELP)
        elif words[0].startswith("/"):
            _say(f"  unknown command {words[0]}\n{HELP}")
        else:
            self.send(line, answering)

    def send(self, message: str, answering: set[asyncio.Task[None]]) -> None:
        task = asyncio.create_task(self.turn(message, busy=bool(answering)))
        answering.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            answering.discard(finished)
            if not answering:
                sys.stdout.write("you> ")
                sys.stdout.flush()

        task.add_done_callback(done)


def _read_lines() -> asyncio.Queue[str | None]:
    """The terminal's lines as they are typed (None at EOF), read by a daemon thread: a line may
    come while a turn runs, and the chat may end while a read waits."""
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def read() -> None:
        while True:
            try:
                line: str | None = input()
            except (EOFError, OSError, ValueError):
                line = None
            loop.call_soon_threadsafe(lines.put_nowait, line)
            if line is None:
                return

    threading.Thread(target=read, name="chat input", daemon=True).start()
    return lines


async def _chat(ns: argparse.Namespace, env: dict[str, str], workspace: Path) -> int:
    config = read_config_file(ns.config) if ns.config else {}
    state = workspace / ".plexum-chat"
    notes = NotesTools(state / "notes.json")
    plugin = await PluginClient.spawn(env=env, tools=notes.functions())
    try:
        try:
            init = await plugin.initialize(config, events=sorted(ACTIVITY_TYPES))
        except JsonRpcError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        codex = init["codex"]
        _say(f"agent {ns.agent!r} in {workspace} — codex {codex['version']} ({codex['path']})")
        if not ns.demo:
            login_warning((init.get("login") or {}).get("logged_in"))
        _say(HELP)
        chat = Chat(
            plugin,
            AgentContext(ns.agent, workspace),
            BlockLog(state / "dynamic.jsonl"),
            demo=ns.demo,
            system=instructions_arg(ns.system),
            state_dir=default_state_dir(env),
            model=ns.model,
            effort=ns.effort,
        )
        await chat.loop()
    finally:
        code = await plugin.close()
        if code != 0:
            print(
                f"the plugin exited with {code}:\n" + "\n".join(plugin.stderr_tail), file=sys.stderr
            )
    return 0


def chat_command(ns: argparse.Namespace) -> int:
    try:
        # A clear message now rather than at initialize.
        config = load_config_file(ns.config) if ns.config else None
        instructions_arg(ns.system)
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        env = dict(os.environ)
        if ns.workspace is not None:
            workspace = ns.workspace.expanduser().resolve()  # a confined agent's is its real path
        elif ns.demo:
            workspace = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="plexum-chat-"))
            )
        else:
            print("error: --workspace is required (or use --demo)", file=sys.stderr)
            return 2
        if not workspace.is_dir():
            print(
                f"error: workspace {workspace} does not exist or is not a folder", file=sys.stderr
            )
            return 2
        if ns.demo:
            from ..testing.demo import demo_environment  # the scripted model, for --demo only

            demo = demo_environment(
                env,
                workspace=workspace if ns.workspace is not None else None,
                binary=config.binary if config is not None else None,
            )
            env = stack.enter_context(demo).env
            _say(
                "demo: a scripted model on 127.0.0.1 and a CODEX_HOME of its own; no login, no network"
            )
        try:
            return asyncio.run(_chat(ns, env, workspace))
        except KeyboardInterrupt:  # before the chat's own Ctrl-C handling, or after it
            _say("")
            return EXIT_CANCELLED
    return 0
