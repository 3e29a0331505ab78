"""Capture a real protocol session (the plugin process, the real codex, the scripted model) and
print it as it appears on the wire, as the Markdown of docs/protocol.md. Usage:

    python tools/capture_protocol_example.py --engine app-server > /tmp/app-server.md
    python tools/capture_protocol_example.py --engine exec > /tmp/exec.md

The session: an initialize; a turn whose conversation has the host's instructions and two
speakers, in which the model writes an interim message, runs a command and streams its answer;
a turn the host talks into while it runs (``when_busy: "steer"``: steered on app-server, queued on
exec); a turn with two host tools, one answered and one the host never answers (it is called
off); a consume of the answered tool's block; a turn that fails because codex is not logged in;
a shutdown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from plexum_openai_provider._io.framing import read_lines
from plexum_openai_provider.testing import (
    FunctionCall,
    HttpError,
    Message,
    ScriptedModelServer,
    Wait,
    write_codex_home,
)

HOST_NS = "mcp__plexum_host_cx"
VENV = "/srv/plexum/venv"  # where this interpreter's files are shown


def tool(name: str, description: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return {"name": name, "description": description, "input_schema": schema}


SYSTEM = {"role": "system", "content": "You are the team's build bot. Answer briefly."}
ASKED = [
    SYSTEM,
    {"role": "user", "name": "ana", "content": "Is the build green?"},
    {"role": "user", "name": "ben", "content": "And do the docs build?"},
]
ANSWERED = {"role": "assistant", "content": "The build is green, and the docs build."}
SUMMARY = {"role": "user", "name": "ana", "content": "Summarize today's changes."}
MORE = {"role": "user", "name": "ben", "content": "Include the docs changes."}


def script(server: ScriptedModelServer, release: threading.Event) -> None:
    server.enqueue(
        [
            Message("Let me check the build log.", phase="commentary"),
            FunctionCall("exec_command", json.dumps({"cmd": "echo build: ok; echo docs: ok"})),
        ],
        Message(
            "The build is green, and the docs build.",
            deltas=("The build is green, ", "and the docs build."),
            delay_s=0.05,
            phase="final_answer",
        ),
        # The turn the host talks into: the model answers once the host has spoken.
        Wait(release, Message("Two changes today: the parser and the CLI.", phase="final_answer")),
        Message("With the docs: the parser, the CLI and the README.", phase="final_answer"),
        [
            FunctionCall("get_weather", '{"city":"Paris"}', namespace=HOST_NS),
            FunctionCall("get_forecast", '{"city":"Paris"}', namespace=HOST_NS),
        ],
        Message("It is sunny in Paris, 21 °C; the forecast did not come.", phase="final_answer"),
        HttpError(401, '{"error": {"message": "Your authentication token has expired."}}'),
    )


class Session:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdin and proc.stdout
        self.proc = proc
        self.wire: list[tuple[str, bytes]] = []
        self.lines = read_lines(proc.stdout)
        self.answers: dict[Any, dict[str, Any]] = {}

    async def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode()
        self.wire.append(("host → plugin", data))
        assert self.proc.stdin is not None
        self.proc.stdin.write(data + b"\n")
        await self.proc.stdin.drain()

    async def request(self, request_id: int, method: str, params: dict[str, Any]) -> None:
        await self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})

    async def until(self, done: Callable[[], bool]) -> None:
        """Read (answering get_weather; get_forecast never) until ``done()``."""
        while not done():
            line = await anext(self.lines)
            assert isinstance(line, bytes)
            self.wire.append(("plugin → host", line))
            message = json.loads(line)
            if message.get("method") == "host/call_tool":
                if message["params"]["name"] == "get_weather":
                    text = {"type": "text", "text": "Sunny, 21 °C"}
                    reply = {"content": [text], "is_error": False}
                    await self.send({"jsonrpc": "2.0", "id": message["id"], "result": reply})
            elif "method" not in message:
                self.answers[message.get("id")] = message

    async def answer(self, request_id: int) -> dict[str, Any]:
        await self.until(lambda: request_id in self.answers)
        return self.answers[request_id]


async def capture(
    root: Path, engine: str, server: ScriptedModelServer, release: threading.Event
) -> list[tuple[str, bytes]]:
    (root / "home").mkdir()
    # The daemon's own PATH: its venv and the system (what a confined agent may read follows it).
    path = os.pathsep.join([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"])
    env = dict(os.environ, CODEX_HOME=str(root / "codex-home"), HOME=str(root / "home"), PATH=path)
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
    s = Session(proc)
    agent = {"id": "cx", "workspace": str(workspace)}
    config = {"engine": engine, "idle_timeout_s": 120, "tool_timeout_s": 2}
    host_info = {"name": "plexum", "version": "1.0"}
    await s.request(
        1, "initialize", {"protocol_version": 1, "host_info": host_info, "config": config}
    )
    await s.answer(1)
    await s.request(2, "turn/start", {"turn_id": "t-1", "agent": agent, "messages": ASKED})
    await s.answer(2)
    # A turn runs; the host has more to say meanwhile.
    earlier = [*ASKED, ANSWERED]
    asked = len(server.requests)
    await s.request(
        3, "turn/start", {"turn_id": "t-2", "agent": agent, "messages": [*earlier, SUMMARY]}
    )
    while len(server.requests) == asked:  # until t-2 has asked the model, which waits
        await asyncio.sleep(0.02)
    busy = {"turn_id": "t-3", "agent": agent, "messages": [*earlier, SUMMARY, MORE]}
    await s.request(4, "turn/start", {**busy, "when_busy": "steer"})
    if engine == "app-server":
        await s.answer(4)  # steered into t-2, answered at once
    else:
        await asyncio.sleep(0.5)  # queued behind t-2: answered when it has run
    release.set()
    await s.until(lambda: 3 in s.answers and 4 in s.answers)
    weather = [tool("get_weather", "Weather of a city"), tool("get_forecast", "Forecast")]
    tools_turn = {"turn_id": "t-4", "agent": agent, "tools": weather}
    await s.request(5, "turn/start", {**tools_turn, "messages": [SYSTEM, MORE]})
    await s.answer(5)
    blocks = [
        json.loads(line)["params"]["event"]["block_id"]
        for d, line in s.wire
        if d == "plugin → host" and b'"tool_call"' in line and b"get_weather" in line
    ]
    await s.request(6, "session/consume", {"agent": agent, "block_ids": blocks})
    await s.answer(6)
    failing = {"role": "user", "name": "ana", "content": "Thanks!"}
    await s.request(7, "turn/start", {"turn_id": "t-5", "agent": agent, "messages": [failing]})
    await s.answer(7)
    await s.request(8, "shutdown", {})
    await s.answer(8)
    assert proc.stdin is not None
    proc.stdin.close()
    await proc.wait()
    return s.wire


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=["app-server", "exec"], default="app-server")
    args = parser.parse_args()
    release = threading.Event()
    with (
        tempfile.TemporaryDirectory(prefix="plexum-example-") as tmp,
        ScriptedModelServer() as server,
    ):
        root = Path(tmp)
        write_codex_home(root / "codex-home", server.base_url)
        script(server, release)
        wire = asyncio.run(capture(root, args.engine, server, release))
        # Markdown, as docs/protocol.md shows it.
        for direction, line in wire:
            text = line.decode().replace(tmp, "/srv/plexum").replace(sys.prefix, VENV)
            text = text.replace(str(Path.home()), "/home/plexum")
            text = text.replace(server.base_url.rstrip("/"), "http://127.0.0.1:PORT/v1")
            print(f"{direction}:\n```json\n{text}\n```")


if __name__ == "__main__":
    main()
