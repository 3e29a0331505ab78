"""The MCP server of one bridge connection, served with the official ``mcp`` SDK.

The SDK's stdio transport owns the process's fd 0/1; here the transport is the bridge socket, so
this module frames it the way ``mcp.server.stdio`` does (one JSON-RPC message per line, parsed by
``mcp_types.jsonrpc_message_adapter``) and hands the streams to ``Server.run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.shared.message import SessionMessage

from .._io.framing import OversizeLine, read_lines
from .._io.text import scrub
from .calls import ToolSession

__all__ = ["serve_mcp"]

log = logging.getLogger(__name__)


def _build_server(session: ToolSession) -> Server[Any]:
    listed = [
        types.Tool(name=t.name, description=t.description or None, input_schema=t.input_schema)
        for t in session.tools
    ]
    call_tool = session.call_tool

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        output = await call_tool(params.name, dict(params.arguments or {}))
        text = scrub(output.text)  # a lone surrogate would make codex fail the whole call
        if output.is_error and not text.lower().startswith("error"):
            # codex 0.163 hands the model an MCP error result's text without saying it is one
            # (the flag only reaches its own rollout): say it in the text.
            text = f"Error: {text}"
        content: list[types.TextContent | types.ImageContent] = [
            types.TextContent(type="text", text=text)
        ]
        content += [
            types.ImageContent(type="image", data=image.data, mime_type=image.mime_type)
            for image in output.images
        ]
        return types.CallToolResult(content=content, is_error=output.is_error)  # type: ignore[arg-type]

    return Server(
        "plexum-host", version="1", on_list_tools=on_list_tools, on_call_tool=on_call_tool
    )


async def serve_mcp(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: ToolSession
) -> None:
    """Serve MCP on one connection until codex (through the relay) closes it."""
    server = _build_server(session)
    to_server, from_socket = anyio.create_memory_object_stream[SessionMessage | Exception](16)
    to_socket, from_server = anyio.create_memory_object_stream[SessionMessage](16)

    async def read_socket() -> None:
        async with to_server:
            async for line in read_lines(reader):
                if isinstance(line, OversizeLine) or not line.strip():
                    continue
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except Exception as exc:  # the SDK answers a bad message itself
                    await to_server.send(exc)
                    continue
                await to_server.send(SessionMessage(message))

    async def write_socket() -> None:
        async with from_server:
            async for session_message in from_server:
                data = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
                writer.write(data.encode() + b"\n")
                await writer.drain()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(read_socket)
            group.start_soon(write_socket)
            await server.run(from_socket, to_socket, server.create_initialization_options())
            group.cancel_scope.cancel()
    except Exception as exc:
        # The relay went away mid-session: codex ended, or its turn was stopped during a call.
        log.info("bridge connection ended: %s: %s", type(exc).__name__, exc)
    finally:
        with contextlib.suppress(Exception):
            writer.close()
