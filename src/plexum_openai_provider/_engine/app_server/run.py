"""One turn of one thread in the shared app-server, as the seam's :class:`~..seam.CodexRun`:
notifications of its thread come in (:meth:`AppServerRun._notify`), are mapped by
:class:`~..app_server_events.AppServerTurn` and queued as seam events."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Protocol

from ..._jsonrpc import JsonRpcError
from ...conversation import ImagePart
from ...errors import AppServerError
from .. import seam
from ..app_server_events import AppServerTurn, SubAgentItems
from .server import AppServer

__all__ = ["AppServerRun", "RunOwner", "input_items"]

log = logging.getLogger(__name__)


class RunOwner(Protocol):
    """What a run needs of its engine (:class:`~.threads.AppServerEngine`): to end its turn, to
    end what the turn left running, and the bound of a request."""

    request_timeout_s: float

    async def _interrupt(self, run: AppServerRun) -> None: ...
    async def _end_left_running(self, server: AppServer, thread_id: str) -> None: ...


def input_items(prompt: str, images: tuple[ImagePart, ...]) -> list[dict[str, Any]]:
    """Input items: the text, then the images, as codex 0.163's ``turn/start`` and ``turn/steer``
    take them. Every image is an ``image`` with a URL: the bytes read when the request came, as a
    data: URL (:meth:`~...conversation.ImagePart.read`), never a ``localImage`` path, which codex
    reads later (by then the agent may have made it a link to another agent's file); an http(s)
    URL as it is."""
    items: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    for image in images:
        url = image.url if image.remote else image.data_url()
        items.append({"type": "image", "url": url})
    return items


class AppServerRun:
    """One turn of one thread in the shared app-server, as a :class:`~.seam.CodexRun`."""

    def __init__(
        self,
        engine: RunOwner | None,
        server: AppServer | None,
        thread_id: str,
        rollout: Path | None,
    ) -> None:
        self.engine = engine
        self.server = server
        self.thread_id = thread_id
        self.turn_id: str | None = None
        self.ended = asyncio.Event()
        self._queue: asyncio.Queue[seam.CodexEvent | None] = asyncio.Queue()
        self._pending: list[tuple[str, Any]] = []  # notifications before the turn id was known
        self._sub_agents = SubAgentItems()  # what its codex sub-agents do
        self._mapper: AppServerTurn | None = None
        self._exit = seam.RunExit(None, "")
        self._queue.put_nowait(seam.ThreadStarted(thread_id, rollout))

    @classmethod
    def stale(cls, detail: str) -> AppServerRun:
        """A run that only says the thread to resume is unknown."""
        run = cls(None, None, "", None)
        run._queue = asyncio.Queue()
        run._queue.put_nowait(seam.ResumeFailed(detail))
        run._queue.put_nowait(None)
        run.ended.set()
        return run

    def _started(self, turn_id: str) -> None:
        self.turn_id = turn_id
        self._queue.put_nowait(seam.TurnStarted())  # codex answered turn/start: it has the input
        self._mapper = AppServerTurn(self.thread_id, turn_id)
        pending, self._pending = self._pending, []
        for method, params in pending:
            self._notify(method, params)

    def _notify_sub_agent(self, agent: str, method: str, params: Any) -> None:
        """A notification of one of the turn's codex sub-agents: its messages and tool calls are
        the turn's events, marked with it."""
        if self.ended.is_set():
            return
        for event in self._sub_agents.feed(agent, method, params):
            self._queue.put_nowait(event)

    def _notify(self, method: str, params: Any) -> None:
        if self.ended.is_set():
            return
        if self._mapper is None:
            if method in ("warning", "error"):  # before any turn: the thread's own
                mapper = AppServerTurn(self.thread_id, "")
                for event in mapper.feed(method, params):
                    self._queue.put_nowait(event)
            else:
                self._pending.append((method, params))
            return
        for event in self._mapper.feed(method, params):
            self._queue.put_nowait(event)
        if self._mapper.ended:
            self._end()
        elif self._mapper.thread_closed:
            self._exit = seam.RunExit(None, "codex app-server closed the thread during the turn")
            self._end()

    def _end(self) -> None:
        if not self.ended.is_set():
            self.ended.set()
            self._queue.put_nowait(None)
            if self.server is not None and self.server.runs.get(self.thread_id) is self:
                del self.server.runs[self.thread_id]

    def _server_gone(self, exit_code: int | None, detail: str) -> None:
        self._exit = seam.RunExit(exit_code, f"codex app-server exited: {detail}")
        self._end()

    async def next_event(self) -> seam.CodexEvent | None:
        return await self._queue.get()

    def ready(self) -> seam.Ready:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return seam.NOT_YET

    async def stop(self) -> None:
        if self.engine is not None and not self.ended.is_set():
            await self.engine._interrupt(self)

    async def steer(self, prompt: str, images: tuple[ImagePart, ...]) -> bool:
        """``turn/steer`` with the running turn's id as the precondition: codex refuses it once
        that turn has ended (then the message waits for the next turn instead)."""
        server = self.server
        if server is None or self.turn_id is None or self.ended.is_set() or self.engine is None:
            return False
        params = {
            "threadId": self.thread_id,
            "expectedTurnId": self.turn_id,
            "input": input_items(prompt, images),
        }
        try:
            await server.request("turn/steer", params, self.engine.request_timeout_s)
        except (JsonRpcError, AppServerError) as exc:
            log.info("codex did not take a steer into turn %s: %s", self.turn_id, exc)
            return False
        return True

    async def finish(self) -> seam.RunExit:
        if (
            self.engine is not None
            and self.server is not None
            and not self.server.gone.is_set()
            and self._may_have_left_processes()
        ):
            await self.engine._end_left_running(self.server, self.thread_id)
        return self._exit

    def _may_have_left_processes(self) -> bool:
        """False only for a turn codex completed (``turn/completed``, status ``completed``) in
        which nothing but messages, reasoning and plans happened. codex 0.163 announces a command
        (``item/started``) when its call returns to the model (at its yield or its end), not when
        it starts it: a turn it completed had every call return, so every command announced, while
        an interrupted or failed one may have left one unannounced. What an earlier turn left was
        ended with that turn. The look through the app-server's processes is then skipped: 0.5-0.7
        ms in the event loop between codex's end and the turn's result."""
        mapper = self._mapper
        return mapper is None or not mapper.completed or mapper.tools_ran

    def stderr_tail(self) -> str:
        return self.server.process.stderr_tail() if self.server is not None else ""
