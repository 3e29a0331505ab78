"""Drives the official Python SDK (``openai-codex``) for the benchmarks, in a process of its own so
that its memory (Python and its app-server) is measured like the plugin's.

One JSON request per line on stdin, one answer per line on stdout:

* ``{"op": "turn", "ws": path, "prompt": str, "thread": id | null}`` →
  ``{"thread", "elapsed", "first_text", "text"}`` (times measured here, with no hop: in the
  SDK's favour);
* ``{"op": "many", "turns": [...]}`` → ``{"wall"}``: the turns at once.

Threads stay loaded in the SDK's one app-server once started or resumed, as an SDK user keeps
them; the settings are the plugin's (no approvals, full access).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from openai_codex import AsyncCodex
from openai_codex._approval_mode import ApprovalMode
from openai_codex._sandbox import Sandbox
from openai_codex.client import CodexConfig


async def main(codex_bin: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    threads: dict[str, Any] = {}
    async with AsyncCodex(CodexConfig(codex_bin=codex_bin)) as codex:

        async def turn(ws: str, prompt: str, thread_id: str | None) -> dict[str, Any]:
            start = time.perf_counter()
            thread = threads.get(thread_id or "")
            if thread is None:
                settings = {"cwd": ws, "sandbox": Sandbox.full_access}
                if thread_id is None:
                    thread = await codex.thread_start(
                        approval_mode=ApprovalMode.deny_all, **settings
                    )
                else:
                    thread = await codex.thread_resume(thread_id, **settings)
                threads[thread.id] = thread
            handle = await thread.turn(prompt)
            first = None
            texts = []
            async for note in handle.stream():
                if note.method == "item/agentMessage/delta":
                    texts.append(note.payload.delta)
                    if first is None:
                        first = time.perf_counter() - start
            return {
                "thread": thread.id,
                "elapsed": time.perf_counter() - start,
                "first_text": first,
                "text": "".join(texts),
            }

        while line := await reader.readline():
            request = json.loads(line)
            try:
                if request["op"] == "ping":
                    answer: dict[str, Any] = {}
                elif request["op"] == "turn":
                    answer = await turn(request["ws"], request["prompt"], request["thread"])
                else:
                    start = time.perf_counter()
                    await asyncio.gather(
                        *(turn(t["ws"], t["prompt"], t["thread"]) for t in request["turns"])
                    )
                    answer = {"wall": time.perf_counter() - start}
            except Exception as exc:  # reported to the benchmark, which fails loudly
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
