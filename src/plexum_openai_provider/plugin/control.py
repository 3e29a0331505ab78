"""The control socket: what a running plugin is doing, for its operator in a shell.

Each plugin process listens on ``control-<pid>.sock`` beside the bridge's sockets (the socket
folder: 0700, the user's own; the socket 0600), so only the user that runs the plugin can ask,
and each of a user's plugins has its own. A connection sends one JSON-RPC request line
(``{"jsonrpc": "2.0", "id": 1, "method": "status"}``) and gets one answer line; then it is closed.
``plexum-openai-provider-plugin status`` asks every plugin it finds there (:func:`ask_all`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._bridge.names import default_socket_dir, ensure_socket_dir
from .._jsonrpc.errors import METHOD_NOT_FOUND

__all__ = ["ControlSocket", "PluginAnswer", "ask_all", "control_path"]

log = logging.getLogger(__name__)

PREFIX = "control-"
# A request line, at most; an answer is read up to this many bytes (a status of 1,000 agents).
_MAX_REQUEST = 4096
_MAX_ANSWER = 16 * 1024 * 1024
_ASK_TIMEOUT_S = 5.0


def control_path(folder: Path | None = None, pid: int | None = None) -> Path:
    return (folder or default_socket_dir()) / f"{PREFIX}{pid or os.getpid()}.sock"


class ControlSocket:
    """Listens while the plugin runs; ``status`` is asked anew for every request."""

    def __init__(self, status: Callable[[], dict[str, Any]], folder: Path | None = None) -> None:
        self._status = status
        self.path = control_path(folder)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        ensure_socket_dir(self.path.parent)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket of an earlier process with this pid
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), _ASK_TIMEOUT_S)
            answer = self._answer(line[:_MAX_REQUEST])
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except ValueError:
            request = None
        if not isinstance(request, dict):
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "not JSON"}}
        request_id = request.get("id")
        if request.get("method") != "status":
            error = {"code": METHOD_NOT_FOUND, "message": "only status is answered here"}
            return {"jsonrpc": "2.0", "id": request_id, "error": error}
        try:
            result = self._status()
        except Exception as exc:  # the operator's view must not take the plugin down
            log.exception("status failed")
            error = {"code": -32603, "message": f"status failed: {exc}"}
            return {"jsonrpc": "2.0", "id": request_id, "error": error}
        return {"jsonrpc": "2.0", "id": request_id, "result": result}


class PluginAnswer:
    """One plugin's answer (``status``), or why there was none."""

    def __init__(self, path: Path, status: dict[str, Any] | None, problem: str | None) -> None:
        self.path = path
        self.status = status
        self.problem = problem


async def _ask(path: Path) -> PluginAnswer:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(str(path), limit=_MAX_ANSWER), _ASK_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        # A plugin that was killed leaves its socket: nobody listens.
        return PluginAnswer(path, None, f"no plugin answers ({exc.strerror or exc})")
    try:
        writer.write(b'{"jsonrpc": "2.0", "id": 1, "method": "status"}\n')
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), _ASK_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as exc:
        return PluginAnswer(path, None, f"no answer ({exc})")
    finally:
        writer.close()
    try:
        answer = json.loads(line)
    except ValueError:
        return PluginAnswer(path, None, "an answer that is not JSON")
    if not isinstance(answer, dict) or not isinstance(answer.get("result"), dict):
        error = answer.get("error") if isinstance(answer, dict) else None
        return PluginAnswer(path, None, f"an error: {error}")
    return PluginAnswer(path, answer["result"], None)


async def ask_all(folder: Path | None = None) -> list[PluginAnswer]:
    """Every plugin of this user (each control socket in the folder), asked at once."""
    folder = folder or default_socket_dir()
    try:
        paths = sorted(folder.glob(f"{PREFIX}*.sock"))
    except OSError:
        return []
    return list(await asyncio.gather(*(_ask(p) for p in paths)))
