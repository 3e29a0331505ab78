"""``plexum-openai-provider-plugin serve``: the protocol on stdio until stdin closes or shutdown."""

from __future__ import annotations

import asyncio
import logging

from ..jsonrpc import Connection
from .server import PluginServer
from .stdio import open_streams, protect_stdout

__all__ = ["SHUTDOWN_GRACE_S", "serve", "serve_stdio"]

log = logging.getLogger(__name__)

# After the turns are cancelled (their own stop steps are bounded), how long the answers may take.
SHUTDOWN_GRACE_S = 10.0


async def serve(in_fd: int, out_fd: int) -> None:
    server = PluginServer()
    reader, writer = await open_streams(in_fd, out_fd)
    connection = Connection(reader, writer, server.handle, name="host")
    server.attach(connection)
    serving = asyncio.create_task(connection.serve())
    shutdown = asyncio.create_task(server.shutdown_requested.wait())
    await asyncio.wait({serving, shutdown}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stdin closed or shutdown requested: cancelling running turns")
    await server.shutdown()
    await connection.wait_handlers(SHUTDOWN_GRACE_S)
    connection.close()
    for task in (serving, shutdown):
        task.cancel()


def serve_stdio() -> int:
    protocol_fd = protect_stdout()
    asyncio.run(serve(0, protocol_fd))
    return 0
