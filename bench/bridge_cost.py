"""Host tools: what offering tools costs a turn (the bridge starts on every tool turn), and the
round trip of one tool call through mcp-host and the socket against a direct in-process MCP call.

    python bench/bridge_cost.py [--rounds N] [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import Env, bench_env, machine, median, pct

from plexum_openai_provider import AgentContext, ToolOutput, ToolSpec
from plexum_openai_provider._bridge.calls import ToolSession
from plexum_openai_provider._bridge.listener import BridgeListener
from plexum_openai_provider._bridge.relay import relay_command
from plexum_openai_provider.plugin.client import PluginClient

TOOLS = [
    ToolSpec(
        f"tool_{i}", f"Tool number {i}", {"type": "object", "properties": {"x": {"type": "string"}}}
    )
    for i in range(5)
]


async def turn_cost(env: Env, rounds: int) -> dict[str, list[float]]:
    client_env = {**env.env, "PLEXUM_SOCKET_DIR": str(env.root / "s")}
    plugin = await PluginClient.spawn(
        env=client_env, tools={t.name: (lambda a: "ok") for t in TOOLS}
    )
    await plugin.initialize()
    times: dict[str, list[float]] = {"no_tools": [], "tools_offered": []}
    n = 0

    async def one(kind: str, ws: Path) -> float:
        nonlocal n
        n += 1
        start = time.perf_counter()
        turn = plugin.start_turn(
            f"t{n}",
            AgentContext(ws.name, ws),
            "hello",
            tools=TOOLS if kind == "tools_offered" else [],
        )
        async for _ in turn:
            pass
        result = await turn.result()
        assert result.status == "completed", result
        return time.perf_counter() - start

    ws = {k: env.workspace(f"agent_{k}") for k in times}
    for kind in times:  # warm-up: registration, the SDK import, first thread
        await one(kind, ws[kind])
    for i in range(rounds):
        order = list(times) if i % 2 == 0 else list(reversed(times))
        for kind in order:
            times[kind].append(await one(kind, ws[kind]))
    tool_requests = [
        r for r in env.server.requests if any("plexum_host" in x for x in r.tool_names())
    ]
    assert len(tool_requests) == rounds + 1, "the tools did not reach the model on every tool turn"
    await plugin.close()
    return times


async def bridge_round_trips(env: Env, calls: int) -> list[float]:
    """tools/call latency from an MCP client speaking to mcp-host (as codex does) → socket → SDK."""
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    sock = env.root / "s2" / "bench.sock"

    async def handler(name: str, args: dict[str, Any]) -> ToolOutput:
        return ToolOutput("ok")

    listener = BridgeListener(sock, "bench", lambda: ToolSession(TOOLS, handler))
    await listener.start()
    command = relay_command()
    params = StdioServerParameters(
        command=command[0],
        args=command[1:],
        env={**os.environ, "PLEXUM_MCP_SOCKET": str(sock), "PLEXUM_MCP_AGENT_ID": "bench"},
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
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with bench_env() as env:
        times = asyncio.run(turn_cost(env, args.rounds))
        bridge = asyncio.run(bridge_round_trips(env, args.calls))
    direct = asyncio.run(direct_round_trips(args.calls))
    print(f"machine: {machine()}")
    a, b = median(times["no_tools"]), median(times["tools_offered"])
    print(
        f"turn without tools: median {a * 1000:.1f} ms; with {len(TOOLS)} tools offered, none called:"
        f" median {b * 1000:.1f} ms; extra {(b - a) * 1000:+.1f} ms (ratio {b / a:.3f}), {args.rounds} each, interleaved"
    )
    print(
        f"tool call round trip over {args.calls} calls: through mcp-host + socket p50 {pct(bridge, 0.5) * 1000:.2f} ms,"
        f" p99 {pct(bridge, 0.99) * 1000:.2f} ms; direct in-process MCP p50 {pct(direct, 0.5) * 1000:.2f} ms,"
        f" p99 {pct(direct, 0.99) * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
