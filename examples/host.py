"""A small Plexum-style host built on PluginClient: two agents, a host tool, a consume, a steer.

Run it (no login, no network: the demo's scripted model on 127.0.0.1 and a CODEX_HOME of its own)::

    python examples/host.py

What it does, as a host would:

1. spawns the plugin (``plexum-openai-provider-plugin serve``, the command a host's config.json
   names) and initializes it;
2. agent ``alice`` asks to save a note: the model calls the host tool ``save_note``, which this
   host answers (``host/call_tool``) from its own notebook;
3. agent ``bob``, in a workspace of its own, is asked to count slowly; while it answers, the host
   sends bob another message with ``when_busy: "steer"``: it joins the running turn;
4. the host consumes alice's tool call (``session/consume``): her thread now carries the marker
   instead of the tool's output, which ``remember`` shows;
5. shuts the plugin down (stdin EOF).

Against a real model: drop ``demo_environment`` (the plugin then uses the user's CODEX_HOME and
codex's login) and ask the agents something else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from plexum_openai_provider import ErrorEvent, Notice, TextDelta, ToolCall, ToolResult
from plexum_openai_provider.plugin.client import ClientTurn, PluginClient
from plexum_openai_provider.requests import AgentContext, ToolSpec
from plexum_openai_provider.testing.demo import demo_environment

NOTEBOOK: list[str] = []  # the host's own state, which its tools read and write

TOOLS = [
    ToolSpec(
        "save_note",
        "Save a note for the user.",
        {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    ),
    ToolSpec("read_notes", "Read every saved note.", {"type": "object", "properties": {}}),
]


def save_note(arguments: dict[str, Any]) -> str:
    NOTEBOOK.append(str(arguments.get("text", "")))
    return f"saved note #{len(NOTEBOOK)}: {NOTEBOOK[-1]}"


def read_notes(arguments: dict[str, Any]) -> str:
    return "\n".join(f"{n}. {note}" for n, note in enumerate(NOTEBOOK, 1)) or "no notes yet"


async def follow(name: str, turn: ClientTurn, first_text: asyncio.Event | None = None) -> list[str]:
    """Print a turn's events as they come; the ids of its tool-call blocks."""
    blocks: list[str] = []
    text = ""
    async for event in turn:
        if isinstance(event, TextDelta):
            text += event.text
            if first_text is not None:
                first_text.set()
        elif isinstance(event, ToolCall):
            blocks.append(event.block_id)
            print(f"  {name}: tool call {event.name} {event.arguments} (block {event.block_id})")
        elif isinstance(event, ToolResult):
            print(f"  {name}: tool result {event.output.strip().splitlines()[-1]}")
        elif isinstance(event, (Notice, ErrorEvent)):
            print(f"  {name}: [{event.type} {event.code}] {event.message}")
    result = await turn.result()
    if text:
        print(f"  {name} says: {text}")
    print(f"  {name}: turn {result.status}" + (f" into {result.into}" if result.into else ""))
    return blocks


async def main() -> int:
    with contextlib.ExitStack() as stack:
        demo = stack.enter_context(demo_environment(dict(os.environ)))
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="plexum-host-")))
        alice = AgentContext("alice", root / "alice")
        bob = AgentContext("bob", root / "bob")
        for agent in (alice, bob):
            agent.workspace.mkdir()
        tools = {"save_note": save_note, "read_notes": read_notes}
        async with await PluginClient.spawn(env=demo.env, tools=tools) as plugin:
            init = await plugin.initialize({"idle_timeout_s": 120})
            print(
                f"plugin {init['plugin_info']['version']}, codex {init['codex']['version']},"
                f" engine {init['engine']['name']}"
            )

            print("alice> note buy milk")
            turn = plugin.start_turn("alice-1", alice, "note buy milk", tools=TOOLS)
            blocks = await follow("alice", turn)
            print(f"host notebook: {NOTEBOOK}")

            print("bob> slowly count")
            answering = asyncio.Event()
            counting = asyncio.create_task(
                follow("bob", plugin.start_turn("bob-1", bob, "slowly count"), answering)
            )
            await answering.wait()  # bob's turn has begun to answer: steer it
            print("bob> and then stop   (sent while bob answers: when_busy steer)")
            await follow("bob", plugin.start_turn("bob-2", bob, "and then stop", when_busy="steer"))
            await counting

            print(f"host consumes alice's blocks {blocks}")
            answer = await plugin.consume(alice, blocks)
            print(f"  consumed {answer['consumed']}, not found {answer['not_found']}")
            print("alice> remember")
            await follow("alice", plugin.start_turn("alice-2", alice, "remember", tools=TOOLS))
        print("plugin shut down")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
