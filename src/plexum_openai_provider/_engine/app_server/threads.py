"""The engine: the app-server it keeps (started on the first turn, replaced when it dies), the
table of the threads it has loaded (what each was loaded with, when it was last used; unloaded
when idle, beyond a count, or for a consume) and a turn's start on one of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..._codex.command import app_server_argv
from ..._codex.guard import guard, thread_processes
from ..._codex.home import codex_home
from ..._codex.limits import Limiter
from ..._codex.policy import PROFILE, prepare_workspace
from ..._codex.process import CodexProcess
from ..._codex.project_docs import SKIP_PROJECT_DOCS_CONFIG
from ..._codex.records import message_item
from ..._io.procinfo import process_tree_rss, process_uptime_s
from ..._jsonrpc import ConnectionClosed, JsonRpcError
from ..._version import __version__
from ...errors import AppServerError
from .. import seam
from ..app_server_probe import probe_live
from .run import AppServerRun, input_items
from .server import AppServer

__all__ = ["AppServerEngine"]

log = logging.getLogger(__name__)

# codex 0.163/0.169 answer thread/resume of an unknown thread with this.
_STALE = ("no rollout found", "thread not found")
# ... and of a thread still being unloaded with this.
_CLOSING = "is closing"


@dataclass
class _Loaded:
    key: str  # what it was loaded with: a different key means reload
    rollout: Path | None
    model: str | None = None  # the model its turns use now (None: not known)
    effort: str | None = None  # the reasoning effort its turns were last given (None: none)
    used: float = field(default_factory=time.monotonic)


class AppServerEngine:
    name: Literal["app-server"] = "app-server"
    rollout_lags = True

    def __init__(
        self,
        binary: str,
        env: Mapping[str, str],
        extra_args: Sequence[str] = (),
        *,
        request_timeout_s: float = 60.0,
        handshake_timeout_s: float = 30.0,
        # Each step of ending a turn or the server (answer the interrupt, end the turn, exit on
        # EOF) takes milliseconds when codex is well: past this it is not, and is killed.
        stop_grace_s: float = 2.0,
        idle_unload_s: float = 600.0,
        max_loaded: int = 64,
        limiter: Limiter | None = None,
    ) -> None:
        self.binary = binary
        self.limiter = limiter
        self.env = limiter.env(dict(env)) if limiter is not None else dict(env)
        self.codex_home = codex_home(self.env)
        self.extra_args = tuple(extra_args)
        self.request_timeout_s = request_timeout_s
        self.handshake_timeout_s = handshake_timeout_s
        self.stop_grace_s = stop_grace_s
        self.idle_unload_s = idle_unload_s
        self.max_loaded = max_loaded
        self.default_model: str | None = None
        self.user_agent: str | None = None
        self.starts = 0  # app-servers started so far (a replaced one counts again)
        self._server: AppServer | None = None
        self._starting = asyncio.Lock()
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()
        self._thread_locks: dict[str, asyncio.Lock] = {}
        self._janitor: asyncio.Task[None] | None = None
        self._closed = False

    # -- the process -------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._server.process.pid if self._server is not None else None

    def status(self) -> dict[str, Any]:
        process = None
        pid = self.pid
        if pid is not None and self._server is not None and not self._server.gone.is_set():
            process = {
                "pid": pid,
                "rss_bytes": process_tree_rss(pid),
                "uptime_s": process_uptime_s(pid),
                "starts": self.starts,
            }
        return {"engine": self.name, "process": process, "loaded_threads": list(self._loaded)}

    async def start(self) -> None:
        """Start the app-server now (a turn would otherwise start it); AppServerError if it
        does not complete its handshake."""
        await self._ensure_server()

    async def _ensure_server(self) -> AppServer:
        async with self._starting:
            if self._closed:
                raise AppServerError("the app-server engine is closed")
            if self._server is not None and not self._server.gone.is_set():
                return self._server
            process = await CodexProcess.start(
                app_server_argv(self.binary, self.extra_args), cwd=None, env=self.env
            )
            server = AppServer(process, self._server_gone)
            try:
                result = await server.request(
                    "initialize",
                    {
                        "clientInfo": {"name": "plexum-openai-provider", "version": __version__},
                        "capabilities": {"experimentalApi": True},
                    },
                    self.handshake_timeout_s,
                )
                await server.connection.notify("initialized")
                config = await server.request("config/read", {}, self.handshake_timeout_s)
            except (AppServerError, JsonRpcError, ConnectionClosed) as exc:
                await server.close(grace_s=1.0)
                raise AppServerError(
                    f"codex app-server failed its handshake: {exc}",
                    exit_code=process.returncode,
                    stderr_tail=process.stderr_tail(),
                ) from None
            if self.starts == 0:  # what the engine relies on, once (see app_server_probe)
                gaps = await probe_live(
                    lambda method, params: server.request(method, params, self.request_timeout_s),
                    lambda thread_id: self._unload(server, thread_id),
                    self.codex_home,
                )
                if gaps:
                    await server.close(grace_s=1.0)
                    raise AppServerError(
                        f"codex app-server lacks what the engine relies on: {'; '.join(gaps)}"
                    )
            if self.limiter is not None:
                # Before any thread: codex made its helper folder before it answered.
                await asyncio.to_thread(self.limiter.adopt, process.pid)
            self.user_agent = result.get("userAgent") if isinstance(result, dict) else None
            settings = config.get("config") if isinstance(config, dict) else None
            model = settings.get("model") if isinstance(settings, dict) else None
            self.default_model = model if isinstance(model, str) else None
            self._server = server
            self.starts += 1
            if self._janitor is None:
                self._janitor = asyncio.create_task(self._unload_idle())
            log.info("codex app-server pid %d ready (%s)", process.pid, self.user_agent)
            return server

    def _server_gone(self, server: AppServer) -> None:
        if self._server is server:
            self._server = None
            self._loaded.clear()  # whatever it had loaded died with it
            if not self._closed:
                log.warning(
                    "codex app-server pid %d exited (code %s); the next turn starts a new one",
                    server.process.pid,
                    server.exit_code,
                )

    # -- threads -----------------------------------------------------------------------------
    def holds_thread(self, thread_id: str) -> bool:
        return thread_id in self._loaded

    def _lock(self, thread_id: str) -> asyncio.Lock:
        return self._thread_locks.setdefault(thread_id, asyncio.Lock())

    async def release_thread(self, thread_id: str) -> None:
        async with self._lock(thread_id):
            server = self._server
            if server is not None and thread_id in self._loaded:
                await self._unload(server, thread_id)

    async def _unload(self, server: AppServer, thread_id: str) -> None:
        # What the thread's tools left running (background terminals) goes with it, ended gently
        # first: codex 0.163 kills it outright at the unload, and a login shell among it may hold
        # pyenv's lock.
        await self._end_thread_processes(server, thread_id)
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[None] = loop.create_future()
        server.closed_waiters[thread_id] = closed
        self._loaded.pop(thread_id, None)
        answer = await server.request(
            "thread/unsubscribe", {"threadId": thread_id}, self.request_timeout_s
        )
        status = answer.get("status") if isinstance(answer, dict) else None
        if status == "unsubscribed":
            try:
                await asyncio.wait_for(closed, self.request_timeout_s)
            except TimeoutError:
                log.warning("codex app-server did not close thread %s after unsubscribe", thread_id)
        server.closed_waiters.pop(thread_id, None)
        server.early.pop(thread_id, None)
        log.debug("unloaded thread %s (%s)", thread_id, status)

    async def _end_left_running(self, server: AppServer, thread_id: str) -> None:
        """At a turn's end: what its commands left running in the background ends with it, as
        it does when ``codex exec`` exits (the app-server would keep it for the thread's later
        turns, until the thread unloads)."""
        if not thread_processes(server.process.pid, thread_id, server.mark):
            return
        await self._end_thread_processes(server, thread_id)
        with contextlib.suppress(AppServerError, JsonRpcError, TimeoutError):
            await server.request(
                "thread/backgroundTerminals/clean", {"threadId": thread_id}, self.stop_grace_s
            )

    async def _end_thread_processes(self, server: AppServer, thread_id: str | None) -> None:
        """End what the thread's tools (every thread's: None) started and left running (codex
        marks them with ``CODEX_THREAD_ID``): SIGTERM, the grace, SIGKILL; bounded."""
        ending = guard().end(thread_processes(server.process.pid, thread_id, server.mark))
        if ending is not None:
            with contextlib.suppress(TimeoutError):  # it has its own bound; this is a backstop
                await asyncio.wait_for(asyncio.shield(ending), self.stop_grace_s)

    async def _unload_idle(self) -> None:
        """Unload threads nobody used for ``idle_unload_s``, and the least recently used beyond
        ``max_loaded``: each loaded thread costs the app-server memory (about 1 MiB idle)."""
        while not self._closed:
            await asyncio.sleep(min(30.0, self.idle_unload_s / 2))
            server = self._server
            if server is None:
                continue
            now = time.monotonic()
            excess = max(len(self._loaded) - self.max_loaded, 0)
            idle = [
                tid
                for i, (tid, loaded) in enumerate(self._loaded.items())
                if (i < excess or now - loaded.used > self.idle_unload_s) and tid not in server.runs
            ]
            for thread_id in idle:
                with contextlib.suppress(AppServerError, JsonRpcError):
                    async with self._lock(thread_id):
                        if thread_id in self._loaded and thread_id not in server.runs:
                            await self._unload(server, thread_id)

    # -- turns -------------------------------------------------------------------------------
    async def start_run(self, spec: seam.RunSpec) -> AppServerRun:
        server = await self._ensure_server()
        if self.limiter is not None and spec.policy.confined:
            try:  # the cgroup the helper moves this agent's commands into
                self.limiter.prepare(str(spec.workspace))
            except OSError as exc:
                raise AppServerError(f"the agent's limits could not be applied: {exc}") from None
        git_folder, no_docs = (
            await asyncio.to_thread(
                prepare_workspace, spec.workspace, self.codex_home, self.extra_args
            )
            if spec.policy.confined
            else (False, False)
        )
        config = {
            **(spec.mcp_server.config() if spec.mcp_server else {}),
            **spec.policy.config(git_folder=git_folder),
        }
        if no_docs:
            config.update(SKIP_PROJECT_DOCS_CONFIG)  # none to find: codex does not look
        # A loaded thread keeps what it was loaded with: another workspace, MCP server (tools) or
        # policy means unload and resume.
        key = json.dumps([str(spec.workspace), config], sort_keys=True)
        settings: dict[str, Any] = {
            "cwd": str(spec.workspace),
            "approvalPolicy": "never",
            "config": config,
        }
        if spec.policy.confined:
            settings["permissions"] = PROFILE  # codex 0.163: not with `sandbox`
        else:
            settings["sandbox"] = "danger-full-access"
        model = spec.model or self.default_model
        if spec.resume is None:
            return await self._new_thread(server, spec, settings, key, model)
        async with self._lock(spec.resume):
            loaded = self._loaded.get(spec.resume)
            if loaded is not None and loaded.key != key:
                await self._unload(server, spec.resume)  # new tools: reload with them
                loaded = None
            if loaded is None:
                server.early.pop(spec.resume, None)  # an earlier load's late news
                resumed = await self._resume(server, spec.resume, settings, key)
                if isinstance(resumed, str):
                    return AppServerRun.stale(resumed)
                loaded = resumed
            return await self._turn(server, spec, spec.resume, loaded, model)

    async def _new_thread(
        self,
        server: AppServer,
        spec: seam.RunSpec,
        settings: dict[str, Any],
        key: str,
        model: str | None,
    ) -> AppServerRun:
        params = {**settings, **({"model": model} if model else {})}
        if spec.instructions:
            params["developerInstructions"] = spec.instructions
        answer = await self._call(server, "thread/start", params)
        thread = answer.get("thread") if isinstance(answer, dict) else None
        thread_id = thread.get("id") if isinstance(thread, dict) else None
        if not isinstance(thread_id, str):
            raise AppServerError(f"codex app-server started a thread without an id: {answer!r}")
        async with self._lock(thread_id):
            loaded = _Loaded(key, _path(thread), model)
            self._loaded[thread_id] = loaded
            if spec.history:
                # The conversation so far, as the model's history (before the turn's input).
                items = [message_item(e.role, e.text) for e in spec.history]
                await self._call(
                    server, "thread/inject_items", {"threadId": thread_id, "items": items}
                )
            return await self._turn(server, spec, thread_id, loaded, model)

    async def _resume(
        self, server: AppServer, thread_id: str, settings: dict[str, Any], key: str
    ) -> _Loaded | str:
        """The loaded thread, or why codex does not know it (a stale thread id)."""
        params = {**settings, "threadId": thread_id, "excludeTurns": True}
        for attempt in range(50):
            try:
                answer = await self._call(server, "thread/resume", params)
            except JsonRpcError as exc:
                text = exc.message.lower()
                if any(marker in text for marker in _STALE):
                    return exc.message
                if _CLOSING in text and attempt < 49:
                    await asyncio.sleep(0.02)  # the thread is still being unloaded
                    continue
                raise AppServerError(
                    f"codex app-server could not resume {thread_id}: {exc.message}"
                ) from None
            thread = answer.get("thread") if isinstance(answer, dict) else None
            loaded = _Loaded(key, _path(thread))
            self._loaded[thread_id] = loaded
            return loaded
        raise AppServerError(f"thread {thread_id} stayed 'closing' in codex app-server")

    async def _turn(
        self,
        server: AppServer,
        spec: seam.RunSpec,
        thread_id: str,
        loaded: _Loaded,
        model: str | None,
    ) -> AppServerRun:
        loaded.used = time.monotonic()
        self._loaded.move_to_end(thread_id)
        run = AppServerRun(self, server, thread_id, loaded.rollout)
        server.runs[thread_id] = run
        for method, news in server.early.pop(thread_id, ()):  # e.g. the metadata warning
            run._notify(method, news)
        if spec.resume is not None and spec.instructions_update is not None:
            # A resumed thread keeps the instructions it started with (codex 0.163-0.171 ignores
            # new developerInstructions): the change is a developer message in its history.
            item = message_item("developer", spec.instructions_update)
            await self._call(
                server, "thread/inject_items", {"threadId": thread_id, "items": [item]}
            )
        params: dict[str, Any] = {"threadId": thread_id, "input": _input(spec)}
        if model and model != loaded.model:
            # Only when it changes: a model given with every turn makes codex redo its model
            # set-up each turn (codex 0.163: ~10 ms, and the metadata warning again).
            params["model"] = model
        # codex takes a W3C trace context on every request (0.163-0.171: JSONRPCRequest.trace).
        trace = {"trace": {"traceparent": spec.traceparent}} if spec.traceparent else None
        if spec.effort is not None and spec.effort != loaded.effort:
            # Like the model, codex keeps a turn's effort for the thread's next turns (0.163+).
            params["effort"] = spec.effort
        try:
            answer = await server.request("turn/start", params, self.request_timeout_s, trace)
        except BaseException:
            server.runs.pop(thread_id, None)
            raise
        turn = answer.get("turn") if isinstance(answer, dict) else None
        turn_id = turn.get("id") if isinstance(turn, dict) else None
        if not isinstance(turn_id, str):
            server.runs.pop(thread_id, None)
            raise AppServerError(f"codex app-server started a turn without an id: {answer!r}")
        run._started(turn_id)
        loaded.model = model or loaded.model
        loaded.effort = spec.effort or loaded.effort
        return run

    async def _call(self, server: AppServer, method: str, params: Any) -> Any:
        return await server.request(method, params, self.request_timeout_s)

    async def _interrupt(self, run: AppServerRun) -> None:
        """End the run's turn: interrupt, then end what its shell left running."""
        server = run.server
        if server is None or server.gone.is_set() or run.turn_id is None:
            return
        try:
            await server.request(
                "turn/interrupt",
                {"threadId": run.thread_id, "turnId": run.turn_id},
                self.stop_grace_s,
            )
            # A shell child outlives turn/interrupt (background terminals, codex 0.163/0.169):
            # ended with the run (finish), gently (codex's own clean-up kills them outright).
            await asyncio.wait_for(run.ended.wait(), self.stop_grace_s)
        except (AppServerError, JsonRpcError, TimeoutError) as exc:
            log.error("codex app-server did not end turn %s: %s; stopping it", run.turn_id, exc)
            server.process.abort()

    async def close(self) -> None:
        self._closed = True
        if self._janitor is not None:
            self._janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._janitor
        server, self._server = self._server, None
        self._loaded.clear()
        if server is not None:
            # codex 0.163 kills its threads' background terminals outright when it exits.
            await self._end_thread_processes(server, None)
            await server.close(self.stop_grace_s)


def _input(spec: seam.RunSpec) -> list[dict[str, Any]]:
    return input_items(spec.prompt, spec.images)


def _path(thread: Any) -> Path | None:
    path = thread.get("path") if isinstance(thread, dict) else None
    return Path(path) if isinstance(path, str) and path else None
