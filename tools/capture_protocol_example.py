"""Capture a real protocol session (the plugin process, the real codex, the scripted model) and
print it as it appears on the wire, as the Markdown of docs/protocol.md. Usage:

    python tools/capture_protocol_example.py --engine app-server > /tmp/app-server.md
    python tools/capture_protocol_example.py --engine exec > /tmp/exec.md

An initialize, a turn (its answer streamed in two pieces by the model), a turn in which the model
calls a host tool, a consume of that block, and a shutdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from plexum_openai_provider._io.framing import read_lines
from plexum_openai_provider.testing import (
    FunctionCall,
    Message,
    ScriptedModelServer,
    write_codex_home,
)

TOOL = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


async def capture(root: Path, engine: str) -> list[tuple[str, bytes]]:
    (root / "home").mkdir()
    env = dict(os.environ, CODEX_HOME=str(root / "codex-home"), HOME=str(root / "home"))
    workspace = root / "agents" / "cx"
    workspace.mkdir(parents=True)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "plexum_openai_provider",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin and proc.stdout
    wire: list[tuple[str, bytes]] = []
    lines = read_lines(proc.stdout)

    async def send(message: dict[str, Any]) -> None:
        data = json.dumps(message).encode()
        wire.append(("host → plugin", data))
        proc.stdin.write(data + b"\n")  # type: ignore[union-attr]
        await proc.stdin.drain()  # type: ignore[union-attr]

    async def until_answer(request_id: Any) -> dict[str, Any]:
        while True:
            line = await anext(lines)
            assert isinstance(line, bytes)
            wire.append(("plugin → host", line))
            message = json.loads(line)
            if message.get("method") == "host/call_tool":
                await send(
                    {
                        "jsonrpc": "2.0",
                        "id": message["id"],
                        "result": {
                            "content": [{"type": "text", "text": "Sunny, 21 °C"}],
                            "is_error": False,
                        },
                    }
                )
                continue
            if message.get("id") == request_id and "method" not in message:
                return message

    agent = {"id": "cx", "workspace": str(workspace)}
    await send(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocol_version": 1,
                "host_info": {"name": "plexum", "version": "1.0"},
                "config": {"engine": engine, "idle_timeout_s": 120},
            },
        }
    )
    await until_answer(1)
    await send(
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "turn/start",
            "params": {
                "turn_id": "t-1",
                "agent": agent,
                "messages": [{"role": "user", "content": "Hello!"}],
            },
        }
    )
    await until_answer(2)
    await send(
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "turn/start",
            "params": {
                "turn_id": "t-2",
                "agent": agent,
                "tools": [TOOL],
                "messages": [{"role": "user", "content": "Weather in Paris?"}],
            },
        }
    )
    answer = await until_answer(3)
    blocks = [
        json.loads(line)["params"]["event"]["block_id"]
        for d, line in wire
        if d == "plugin → host" and b'"tool_call"' in line and b'"turn/event"' in line
    ]
    await send(
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "session/consume",
            "params": {"agent": agent, "block_ids": blocks},
        }
    )
    await until_answer(4)
    del answer
    await send({"jsonrpc": "2.0", "id": 5, "method": "shutdown", "params": {}})
    await until_answer(5)
    proc.stdin.close()
    await proc.wait()
    return wire


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=["app-server", "exec"], default="app-server")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="plexum-example-") as tmp,
        ScriptedModelServer() as server,
    ):
        root = Path(tmp)
        write_codex_home(root / "codex-home", server.base_url)
        server.enqueue(
            Message("Hello! How can I help?", deltas=("Hello! ", "How can I help?"), delay_s=0.05)
        )
        server.enqueue(
            FunctionCall("get_weather", '{"city":"Paris"}', namespace="mcp__plexum_host_cx"),
            Message("It is sunny in Paris, 21 °C."),
        )
        wire = asyncio.run(capture(root, args.engine))
    # Markdown, as docs/protocol.md shows it.
    for direction, line in wire:
        text = line.decode().replace(tmp, "/srv/plexum")
        print(f"{direction}:\n```json\n{text}\n```")


if __name__ == "__main__":
    main()
