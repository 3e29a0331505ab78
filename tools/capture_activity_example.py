"""Capture a session with the activity events (the plugin process, the real codex, the scripted
model) and print it as docs/protocol.md shows it, with when each ``tool_output_delta`` reached the
host against when the command printed its line. Usage:

    python tools/capture_activity_example.py --engine app-server
    python tools/capture_activity_example.py --engine exec

The turn: the model thinks (a reasoning summary), makes a plan, runs a command that prints a line
every second for 5 s (each line says when it was printed), applies a patch (the scripted model
stands in for gpt-5.5, whose catalog entry offers apply_patch) and answers; then ``status``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from plexum_openai_provider._io.framing import read_lines
from plexum_openai_provider.events import ACTIVITY_TYPES
from plexum_openai_provider.testing import (
    CustomToolCall,
    FunctionCall,
    Message,
    Reasoning,
    ScriptedModelServer,
    write_codex_home,
)

COMMAND = "for i in 1 2 3 4 5; do echo line $i at $(date +%s.%N); sleep 1; done"
PATCH = "*** Begin Patch\n*** Add File: notes.txt\n+one\n+two\n*** Update File: seed.txt\n@@\n-old\n+new\n*** End Patch\n"
PLAN = {
    "explanation": "count, then report",
    "plan": [{"step": "count", "status": "in_progress"}, {"step": "report", "status": "pending"}],
}


async def capture(root: Path, engine: str) -> tuple[list[tuple[str, float, bytes]], str]:
    env = dict(os.environ, CODEX_HOME=str(root / "codex-home"), HOME=str(root))
    workspace = root / "agents" / "cx"
    workspace.mkdir(parents=True)
    (workspace / "seed.txt").write_text("old\n")
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
    lines = read_lines(proc.stdout)
    wire: list[tuple[str, float, bytes]] = []

    async def send(request_id: int, method: str, params: dict[str, Any]) -> None:
        data = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        wire.append(("host → plugin", time.time(), data.encode()))
        assert proc.stdin is not None
        proc.stdin.write(data.encode() + b"\n")
        await proc.stdin.drain()

    async def answer(request_id: int) -> dict[str, Any]:
        while True:
            line = await anext(lines)
            assert isinstance(line, bytes)
            wire.append(("plugin → host", time.time(), line))
            message = json.loads(line)
            if message.get("id") == request_id and "method" not in message:
                return dict(message)

    config = {
        "engine": engine,
        "supported_models": ["gpt-5.5"],
        "model_args": {"gpt-5.5": "gpt-5.5"},
    }
    host_info = {"name": "plexum", "version": "1.0"}
    events = sorted(ACTIVITY_TYPES)
    await send(
        1,
        "initialize",
        {"protocol_version": 1, "host_info": host_info, "config": config, "events": events},
    )
    await answer(1)
    agent = {"id": "cx", "workspace": str(workspace)}
    await send(
        2,
        "turn/start",
        {
            "turn_id": "t-1",
            "agent": agent,
            "messages": [{"role": "user", "content": "Count to five, then note it."}],
        },
    )
    await answer(2)
    await send(3, "shutdown", {})
    await answer(3)
    proc.stdin.close()
    await proc.wait()
    return wire, str(root)


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
            [
                Reasoning(("Counting first, then a note.",)),
                FunctionCall("update_plan", json.dumps(PLAN)),
            ],
            FunctionCall("exec_command", json.dumps({"cmd": COMMAND})),
            CustomToolCall(PATCH, name="apply_patch", namespace=None),
            Message("Counted to five and wrote notes.txt."),
        )
        wire, prefix = asyncio.run(capture(root, args.engine))
        lags = []
        for direction, at, line in wire:
            text = line.decode().replace(prefix, "/srv/plexum")
            print(f"{direction}:\n```json\n{text}\n```")
            message = json.loads(line)
            event = (message.get("params") or {}).get("event") or {}
            if event.get("type") == "tool_output_delta":
                for printed in event["text"].splitlines():
                    stamp = float(printed.rsplit(" ", 1)[1])
                    lags.append((printed.split(" at ")[0], stamp, at))
        print("\n| line | printed | reached the host | after |\n|---|---|---|---|")
        for name, printed, reached in lags:
            print(
                f"| {name} | {printed:.3f} | {reached:.3f} | {(reached - printed) * 1000:.0f} ms |"
            )


if __name__ == "__main__":
    main()
