"""Drives the plugin process for the benchmarks, as a host would, from a process of its own: the
same set-up as the SDK's worker (sdk_worker.py), so neither shares an interpreter with the
benchmark's scripted model server. Times are taken here, across the plugin's protocol.

One JSON request per line on stdin, one answer per line on stdout:

* ``{"op": "start", "config": {...}}`` → ``{"pid", "initialize"}`` (the plugin's pid);
* ``{"op": "turn", "ws", "prompt", "tools": bool}`` → ``{"thread", "elapsed", "first_text",
  "text"}``;
* ``{"op": "many", "turns": [{"ws", "prompt"}]}`` → ``{"wall"}``;
* ``{"op": "consume", "ws", "ids"}`` → ``{"elapsed"}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from plexum_openai_provider import AgentContext, TextDelta, ToolSpec
from plexum_openai_provider.plugin.client import PluginClient

TOOLS = [
    ToolSpec(
        f"tool_{i}", f"Tool number {i}", {"type": "object", "properties": {"x": {"type": "string"}}}
    )
    for i in range(5)
]


async def main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    plugin: PluginClient | None = None
    n = 0

    async def turn(ws: str, prompt: str, tools: bool) -> dict[str, Any]:
        nonlocal n
        assert plugin is not None
        n += 1
        path = Path(ws)
        start = time.perf_counter()
        handle = plugin.start_turn(
            f"w{n}", AgentContext(path.name, path), prompt, tools=TOOLS if tools else ()
        )
        first = None
        texts = []
        async for event in handle:
            if isinstance(event, TextDelta):
                texts.append(event.text)
                if first is None:
                    first = time.perf_counter() - start
        result = await handle.result()
        elapsed = time.perf_counter() - start
        if result.status != "completed":
            raise RuntimeError(f"turn {result.status}: {result.error}")
        return {
            "thread": result.thread_id,
            "elapsed": elapsed,
            "first_text": first,
            "text": "".join(texts),
        }

    while line := await reader.readline():
        request = json.loads(line)
        try:
            op = request["op"]
            if op == "start":
                plugin = await PluginClient.spawn(tools={t.name: (lambda a: "ok") for t in TOOLS})
                init = await plugin.initialize(request["config"])
                answer: dict[str, Any] = {"pid": plugin.process.pid, "initialize": init}
            elif op == "turn":
                answer = await turn(request["ws"], request["prompt"], request.get("tools", False))
            elif op == "many":
                start = time.perf_counter()
                await asyncio.gather(*(turn(t["ws"], t["prompt"], False) for t in request["turns"]))
                answer = {"wall": time.perf_counter() - start}
            elif op == "consume":
                assert plugin is not None
                path = Path(request["ws"])
                start = time.perf_counter()
                await plugin.consume(AgentContext(path.name, path), request["ids"])
                answer = {"elapsed": time.perf_counter() - start}
            else:
                answer = {"error": f"unknown op {op}"}
        except Exception as exc:  # reported to the benchmark, which fails loudly
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    if plugin is not None:
        await plugin.close()


if __name__ == "__main__":
    asyncio.run(main())
