"""The plugin process driven with raw protocol lines, for tests that need to see the wire."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from plexum_openai_provider._io.framing import OversizeLine, read_lines
from tests.conftest import host_config


def turn_params(
    turn_id: str, agent: str, workspace: Path, text: str, **extra: Any
) -> dict[str, Any]:
    """turn/start params for one user message."""
    return {
        "turn_id": turn_id,
        "agent": {"id": agent, "workspace": str(workspace)},
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


class RawPlugin:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        assert process.stdout is not None and process.stderr is not None
        self._lines = read_lines(process.stdout)
        self.received: list[bytes] = []
        self.notes: list[dict[str, Any]] = []  # notifications read while waiting for an answer
        self.stderr = bytearray()  # read as it comes: a full pipe would block the plugin
        self._stderr_task = asyncio.create_task(self._drain(process.stderr))

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(1 << 16):
            self.stderr += chunk

    async def stderr_text(self) -> str:
        """Everything the plugin wrote on stderr (call once it has exited)."""
        await asyncio.wait_for(self._stderr_task, 10)
        return self.stderr.decode("utf-8", "replace")

    @classmethod
    async def spawn(cls, env: Mapping[str, str], argv: Sequence[str] | None = None) -> RawPlugin:
        argv = list(argv or [sys.executable, "-m", "plexum_openai_provider"])
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
        )
        return cls(process)

    async def send(self, message: dict[str, Any] | bytes) -> None:
        data = message if isinstance(message, bytes) else json.dumps(message).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(data + b"\n")
        await self.process.stdin.drain()

    async def recv_line(self, timeout: float = 60) -> bytes:
        line = await asyncio.wait_for(anext(self._lines), timeout)
        assert not isinstance(line, OversizeLine)
        self.received.append(line)
        return line

    async def recv(self, timeout: float = 60) -> dict[str, Any]:
        message = json.loads(await self.recv_line(timeout))
        assert isinstance(message, dict)
        return message

    async def submit(self, request_id: Any, method: str, params: Any = None) -> None:
        """Send a request without waiting for its answer (read it later with :meth:`answer`)."""
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)

    async def request(self, request_id: Any, method: str, params: Any = None) -> dict[str, Any]:
        """Send a request; return its answer (notifications before it are kept in .notes)."""
        await self.submit(request_id, method, params)
        return await self.answer(request_id)

    async def answer(self, request_id: Any, timeout: float = 60) -> dict[str, Any]:
        message = await self.answer_any(timeout)
        assert message.get("id") == request_id, message
        return message

    async def recv_until(
        self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        """The next message ``wanted`` accepts (the others are kept in .notes)."""
        while not wanted(message := await self.recv(timeout)):
            self.notes.append(message)
        return message

    async def answer_any(self, timeout: float = 60) -> dict[str, Any]:
        """The next answer, to whichever request (notifications before it are kept in .notes)."""
        while True:
            message = await self.recv(timeout)
            if "method" in message:
                self.notes.append(message)
                continue
            return message

    async def initialize(self, config: dict[str, Any] | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "protocol_version": 1,
            "host_info": {"name": "test", "version": "1"},
        }
        params["config"] = host_config(**(config or {}))
        answer = await self.request("init", "initialize", params)
        assert "result" in answer, answer
        return answer["result"]  # type: ignore[no-any-return]

    async def close(self, timeout: float = 30) -> int:
        assert self.process.stdin is not None
        if not self.process.stdin.is_closing():
            self.process.stdin.close()
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise
