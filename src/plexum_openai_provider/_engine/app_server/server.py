"""One running ``codex app-server``: its process (own process group), its JSON-RPC connection,
and the routing of its notifications to the run of their thread (or, before a run took them, a
short queue of early news)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Protocol

from ..._codex.guard import guard
from ..._codex.process import CodexProcess
from ..._jsonrpc import Connection, ConnectionClosed, JsonRpcError
from ..._jsonrpc.errors import METHOD_NOT_FOUND
from ...errors import AppServerError
from ..app_server_events import sub_agents_named
from ..exec import stderr_summary

__all__ = ["AppServer", "ServedRun"]

log = logging.getLogger(__name__)


class ServedRun(Protocol):
    """What the server needs of a run (:class:`~.run.AppServerRun`): its thread's news, and
    word that the server is gone."""

    def _notify(self, method: str, params: Any) -> None: ...
    def _notify_sub_agent(self, agent: str, method: str, params: Any) -> None: ...
    def _server_gone(self, exit_code: int | None, detail: str) -> None: ...


class AppServer:
    """One running app-server: its process, its connection, the runs it serves."""

    def __init__(self, process: CodexProcess, on_gone: Callable[[AppServer], None]) -> None:
        """``on_gone``: told when the process has exited (the engine then forgets it)."""
        self.process = process
        self._on_gone = on_gone
        self.connection = Connection(
            process.stdout,
            process.stdin,
            self._on_request,
            name="codex app-server",
            strict=False,
            on_notification=self._on_notification,
        )
        self.runs: dict[str, ServedRun] = {}  # thread id → the run of its turn
        # What marks every process this app-server starts (see _codex/guard.py).
        self.mark = guard().marker(process.run) if process.run else None
        self.early: dict[str, deque[tuple[str, Any]]] = {}  # notifications before a run took them
        self.closed_waiters: dict[str, asyncio.Future[None]] = {}
        # A codex sub-agent's thread → (the thread of the agent's turn, the sub-agent's path).
        self.sub_agents: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.gone = asyncio.Event()
        self.exit_code: int | None = None
        self._serving = asyncio.create_task(self._serve())

    async def _serve(self) -> None:
        try:
            await self.connection.serve()
        finally:
            self.exit_code = await self.process.wait()
            self.gone.set()
            self._on_gone(self)
            detail = stderr_summary(self.process.stderr_tail()) or "no output"
            for run in list(self.runs.values()):
                run._server_gone(self.exit_code, detail)

    async def _on_request(self, method: str, params: Any, is_notification: bool) -> Any:
        # Approvals and questions: none should come (approvalPolicy never, no dynamic tools);
        # an answer keeps codex from waiting for ever.
        log.warning("codex app-server asked %s, which this plugin does not answer", method)
        raise JsonRpcError(METHOD_NOT_FOUND, f"{method} is not supported by this client")

    def _on_notification(self, method: str, params: Any) -> None:
        thread = params.get("threadId") if isinstance(params, dict) else None
        if method == "thread/closed" and isinstance(thread, str):
            waiter = self.closed_waiters.pop(thread, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if not isinstance(thread, str):
            log.debug("codex app-server: %s", method)
            return
        self._note_sub_agents(thread, params.get("item"))
        if thread in self.sub_agents:
            root, agent = self.sub_agents[thread]
            parent = self.runs.get(root)
            if parent is not None:
                parent._notify_sub_agent(agent, method, params)
            return
        run = self.runs.get(thread)
        if run is not None:
            run._notify(method, params)
        else:
            queue = self.early.setdefault(thread, deque(maxlen=64))
            queue.append((method, params))

    def _note_sub_agents(self, thread: str, item: Any) -> None:
        """Remember the sub-agents an item of ``thread`` names (a sub-agent's own sub-agents
        belong to the same turn); the newest 1024 are kept."""
        root = self.sub_agents.get(thread, (thread, ""))[0]
        for child, path in sub_agents_named(item).items():
            self.sub_agents[child] = (root, path)
            self.sub_agents.move_to_end(child)
            while len(self.sub_agents) > 1024:
                self.sub_agents.popitem(last=False)

    async def request(
        self, method: str, params: Any, timeout: float, extra: dict[str, Any] | None = None
    ) -> Any:
        try:
            return await self.connection.request(method, params, timeout=timeout, extra=extra)
        except TimeoutError:
            log.error("codex app-server did not answer %s within %g s: ending it", method, timeout)
            self.process.abort()
            raise AppServerError(
                f"codex app-server did not answer {method} within {timeout:g} s; it was stopped"
                " and a new one starts with the next turn",
                stderr_tail=self.process.stderr_tail(),
            ) from None
        except ConnectionClosed:
            await asyncio.wait_for(self.gone.wait(), 10)
            raise AppServerError(
                f"codex app-server exited (code {self.exit_code}) during {method}:"
                f" {stderr_summary(self.process.stderr_tail()) or 'no output'}",
                exit_code=self.exit_code,
                stderr_tail=self.process.stderr_tail(),
            ) from None

    async def close(self, grace_s: float = 5.0) -> None:
        """EOF on stdin (the app-server then exits), bounded; then the process group."""
        with contextlib.suppress(Exception):
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.gone.wait(), grace_s)
        except TimeoutError:
            await self.process.stop(int_grace_s=1.0, term_grace_s=1.0)
        await self.process.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._serving, 5)
