"""``plexum-openai-provider-plugin serve``: the protocol on stdio until stdin closes, ``shutdown``,
SIGTERM or SIGINT; each of these ends the same way: running turns are cancelled and answered,
every codex is stopped, the plugin exits 0.

All of that is bounded by :data:`SHUTDOWN_BOUND_S` whatever codex does (an app-server that stopped
answering included): past it the plugin exits 1, and its watchdog ends what codex still runs
(SIGTERM, 0.5 s, SIGKILL; see ``_codex/guard.py``). A service manager's stop timeout must be
above the bound plus that grace (``examples/plexum.service``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from typing import NoReturn

from .._codex.guard import guard
from .._jsonrpc import Connection
from ..errors import ProviderError
from .control import ControlSocket
from .server import PluginServer
from .stdio import open_streams, protect_stdout

__all__ = ["SHUTDOWN_BOUND_S", "serve", "serve_stdio"]

log = logging.getLogger(__name__)

# From the shutdown's start to the exit, at most. Measured (docs/guarantees.md): 0.1-0.2 s with
# turns running on either engine; about 2.7 s when the app-server stopped answering.
SHUTDOWN_BOUND_S = 10.0
# Past the bound, how long the event loop's own end may take before the process just exits.
_EXIT_GRACE_S = 2.0


async def serve(in_fd: int, out_fd: int) -> None:
    # What codex orphans (a slow login shell's snapshot, a tool that left its session) comes
    # here and is ended with its run; see _codex/guard.py.
    guard().enable_subreaper()
    server = PluginServer()
    reader, writer = await open_streams(in_fd, out_fd)
    # A host/call_tool the plugin no longer waits for is called off (protocol.md).
    connection = Connection(reader, writer, server.router, name="host", call_off=True)
    server.attach(connection)
    control = ControlSocket(server.status)
    try:
        await control.start()
    except (OSError, ProviderError) as exc:  # the protocol works without it
        log.warning("no control socket (status from a shell): %s", exc)
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
    deadline = time.monotonic() + SHUTDOWN_BOUND_S
    try:
        await asyncio.wait_for(server.shutdown(), SHUTDOWN_BOUND_S)
    except TimeoutError:
        log.error(
            "shutdown took over %g s: exiting now; the watchdog ends what codex still runs",
            SHUTDOWN_BOUND_S,
        )
        await control.close()
        connection.close()
        _exit_soon(1)
    # The answers to the cancelled turns, and the call-offs of their host tools.
    await connection.wait_handlers(max(deadline - time.monotonic(), 0.1))
    await control.close()
    connection.close()
    for task in (serving, shutdown):
        task.cancel()


def _exit_soon(code: int) -> NoReturn:
    """Exit with ``code`` even if a task of the event loop does not end when it is cancelled."""
    timer = threading.Timer(_EXIT_GRACE_S, os._exit, (code,))
    timer.daemon = True
    timer.start()
    raise SystemExit(code)


def serve_stdio() -> int:
    protocol_fd = protect_stdout()
    asyncio.run(serve(0, protocol_fd))
    return 0


def _on_signal(sig: signal.Signals, shutdown: asyncio.Event) -> None:
    log.info("received %s: shutting down", sig.name)
    shutdown.set()
