"""``plexum-openai-provider-plugin serve``: the protocol on stdio until stdin closes, ``shutdown``,
SIGTERM or SIGINT; each of these ends the same way: running turns are cancelled and answered,
every codex is stopped, the plugin exits 0."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from .._codex.guard import guard
from .._jsonrpc import Connection
from .server import PluginServer
from .stdio import open_streams, protect_stdout

__all__ = ["SHUTDOWN_GRACE_S", "serve", "serve_stdio"]

log = logging.getLogger(__name__)

# After the turns are cancelled (their own stop steps are bounded), how long the answers may take.
SHUTDOWN_GRACE_S = 10.0


async def serve(in_fd: int, out_fd: int) -> None:
    # What codex orphans (a slow login shell's snapshot, a tool that left its session) comes
    # here and is ended with its run; see _codex/guard.py.
    guard().enable_subreaper()
    server = PluginServer()
    reader, writer = await open_streams(in_fd, out_fd)
    # A host/call_tool the plugin no longer waits for is called off (protocol.md).
    connection = Connection(reader, writer, server.router, name="host", call_off=True)
    server.attach(connection)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # A host that stops its child with terminate() (or a Ctrl-C) gets a clean end, not a
        # crash that orphans codex and its tools.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, _on_signal, sig, server.shutdown_requested)
    serving = asyncio.create_task(connection.serve())
    shutdown = asyncio.create_task(server.shutdown_requested.wait())
    await asyncio.wait({serving, shutdown}, return_when=asyncio.FIRST_COMPLETED)
    log.info("stdin closed, shutdown or a signal: cancelling running turns")
    await server.shutdown()
    await connection.wait_handlers(SHUTDOWN_GRACE_S)
    connection.close()
    for task in (serving, shutdown):
        task.cancel()


def serve_stdio() -> int:
    protocol_fd = protect_stdout()
    asyncio.run(serve(0, protocol_fd))
    return 0


def _on_signal(sig: signal.Signals, shutdown: asyncio.Event) -> None:
    log.info("received %s: shutting down", sig.name)
    shutdown.set()
