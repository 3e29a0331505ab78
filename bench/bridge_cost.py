"""Host tools: the round trip of one tool call through mcp-host and the socket against a direct
in-process MCP call of the same SDK server. (What offering tools costs a turn is in engines.py.)

    python bench/bridge_cost.py [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import Env, bench_env, machine, pct

from plexum_openai_provider import ToolOutput, ToolSpec
from plexum_openai_provider._bridge.calls import ToolSession
from plexum_openai_provider._bridge.listener import BridgeListener
from plexum_openai_provider._bridge.relay import AGENT_ENV, KEY_ENV, SOCKET_ENV, relay_command

TOOLS = [
    ToolSpec(
        f"tool_{i}", f"Tool number {i}", {"type": "object", "properties": {"x": {"type": "string"}}}
    )
    for i in range(5)
]


async def bridge_round_trips(env: Env, calls: int) -> list[float]:
    """tools/call latency from an MCP client speaking to mcp-host (as codex does) → socket → SDK."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    sock = env.root / "s2" / "bench.sock"

    async def handler(name: str, args: dict[str, Any]) -> ToolOutput:
        return ToolOutput("ok")

    listener = BridgeListener(
        sock, "bench", lambda: ToolSession(TOOLS, handler), key=secrets.token_hex(32)
    )
    await listener.start()
    command = relay_command()
    relay_env = {SOCKET_ENV: str(sock), AGENT_ENV: "bench", KEY_ENV: str(listener.key_path)}
    params = StdioServerParameters(
        command=command[0], args=command[1:], env={**os.environ, **relay_env}
    )
    out = []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        for _ in range(20):
            await session.call_tool("tool_0", {"x": "warm"})
        for _ in range(calls):
            start = time.perf_counter()
            result = await session.call_tool("tool_0", {"x": "y"})
            out.append(time.perf_counter() - start)
            assert not result.is_error
    await listener.close()
    return out


async def direct_round_trips(calls: int) -> list[float]:
    """The same tool served by the same SDK server code, client and server in one process."""
    import anyio
    from mcp.client.session import ClientSession

    from plexum_openai_provider._bridge.mcp_session import _build_server

    async def handler(name: str, args: dict[str, Any]) -> ToolOutput:
        return ToolOutput("ok")

    server = _build_server(ToolSession(TOOLS, handler))
    c2s_send, c2s_recv = anyio.create_memory_object_stream[Any](16)
    s2c_send, s2c_recv = anyio.create_memory_object_stream[Any](16)
    out = []
    async with anyio.create_task_group() as group:
        group.start_soon(
            lambda: server.run(c2s_recv, s2c_send, server.create_initialization_options())
        )
        async with ClientSession(s2c_recv, c2s_send) as session:
            await session.initialize()
            for _ in range(20):
                await session.call_tool("tool_0", {"x": "warm"})
            for _ in range(calls):
                start = time.perf_counter()
                await session.call_tool("tool_0", {"x": "y"})
                out.append(time.perf_counter() - start)
        group.cancel_scope.cancel()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with bench_env() as env:
        bridge = asyncio.run(bridge_round_trips(env, args.calls))
    direct = asyncio.run(direct_round_trips(args.calls))
    print(f"machine: {machine()}")
    print(
        f"tool call round trip over {args.calls} calls: through mcp-host + socket p50 {pct(bridge, 0.5) * 1000:.2f} ms,"
        f" p99 {pct(bridge, 0.99) * 1000:.2f} ms; direct in-process MCP p50 {pct(direct, 0.5) * 1000:.2f} ms,"
        f" p99 {pct(direct, 0.99) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
