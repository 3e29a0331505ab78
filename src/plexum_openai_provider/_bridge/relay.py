"""``plexum-openai-provider-plugin mcp-host``: the process codex starts as the agent's MCP server.

It connects to the plugin's socket for this agent (``PLEXUM_MCP_SOCKET``), introduces itself with
one line ``{"agent_id": ..., "key": ...}`` (the agent's secret, read from the 0600 file
``PLEXUM_MCP_KEY_FILE`` names: the agent id alone proves nothing), and once the plugin answers
``{"ok": true}`` it copies bytes both ways between its stdio (codex) and the socket (the plugin,
which serves MCP with the SDK).

When nobody listens (no turn of this agent is running) or the plugin refuses it, it still answers
codex, by itself: an MCP server with no tools whose calls fail with the reason. It never hangs and
never crashes codex. Standard library only, and importable as a lone file: this runs once per
tool turn and must start fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading

__all__ = [
    "AGENT_ENV",
    "HELLO_TIMEOUT_S",
    "KEY_ENV",
    "SOCKET_ENV",
    "TOOLS_ENV",
    "relay_command",
    "relay_main",
]

SOCKET_ENV = "PLEXUM_MCP_SOCKET"
AGENT_ENV = "PLEXUM_MCP_AGENT_ID"
KEY_ENV = "PLEXUM_MCP_KEY_FILE"
TOOLS_ENV = "PLEXUM_MCP_TOOLS"
_KEY_MAX = 256
HELLO_TIMEOUT_S = 5.0
_CHUNK = 1 << 16
# What the offline server answers with when codex proposes no version (MCP's current one).
_DEFAULT_PROTOCOL = "2025-06-18"


def relay_command() -> list[str]:
    """What codex runs as an agent's MCP server: this interpreter on this file, isolated and
    without ``site`` (``-I -S``). It is the same code as ``plexum-openai-provider-plugin
    mcp-host``, but starts about 30 ms sooner (measured: 0.09 s against 0.12 s), which every tool
    turn pays because codex waits for the bridge. Absolute paths both: no PATH involved."""
    return [sys.executable, "-I", "-S", os.path.realpath(__file__), "mcp-host"]


def _log(message: str) -> None:
    sys.stderr.write(f"plexum mcp-host: {message}\n")
    sys.stderr.flush()


def read_key(path: str) -> str | None:
    """The agent's secret from its key file (a regular file, never followed through a link)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        data = os.read(fd, _KEY_MAX)
    except OSError:
        return None
    finally:
        os.close(fd)
    key = data.decode("ascii", "replace").strip()
    return key or None


def relay_main() -> int:
    path = os.environ.get(SOCKET_ENV)
    agent_id = os.environ.get(AGENT_ENV)
    key_file = os.environ.get(KEY_ENV)
    if not path or agent_id is None or not key_file:
        return serve_offline(
            f"mcp-host needs {SOCKET_ENV}, {AGENT_ENV} and {KEY_ENV} (set by the plugin)"
        )
    key = read_key(key_file)
    if key is None:
        reason = f"no turn of this agent is running (its key {key_file} cannot be read)"
        _log(reason)
        return serve_offline(reason)
    sock, rest, reason = connect(path, agent_id, key)
    if sock is None:
        _log(reason)
        return serve_offline(reason)
    pump(sock, rest)
    return 0


def connect(path: str, agent_id: str, key: str) -> tuple[socket.socket | None, bytes, str]:
    """(socket, bytes read past the answer, "") or (None, b"", why not)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(HELLO_TIMEOUT_S)
    try:
        sock.connect(path)
        sock.sendall(json.dumps({"agent_id": agent_id, "key": key}).encode() + b"\n")
        buffer = b""
        while b"\n" not in buffer:
            chunk = sock.recv(_CHUNK)
            if not chunk:
                raise ConnectionError("the plugin closed the connection")
            buffer += chunk
    except (OSError, ConnectionError) as exc:
        sock.close()
        return None, b"", f"no turn of this agent is running (plugin socket {path}: {exc})"
    line, rest = buffer.split(b"\n", 1)
    try:
        answer = json.loads(line)
    except ValueError:
        answer = {}
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        sock.close()
        error = answer.get("error") if isinstance(answer, dict) else None
        return None, b"", f"the plugin refused this bridge: {error or 'no reason given'}"
    sock.settimeout(None)
    return sock, rest, ""


def pump(sock: socket.socket, rest: bytes) -> None:
    def upstream() -> None:  # codex → plugin
        try:
            while data := os.read(0, _CHUNK):
                sock.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    try:
        if rest:
            _write_all(rest)
        while data := sock.recv(_CHUNK):  # plugin → codex
            _write_all(data)
    except OSError:
        pass
    finally:
        sock.close()


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view) :]


def serve_offline(reason: str) -> int:
    """A minimal MCP server: no tools, every call an error saying ``reason``."""
    for raw in sys.stdin.buffer:
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(message, dict) or "id" not in message or "method" not in message:
            continue  # notifications and responses need no answer
        answer: dict[str, object] = {"jsonrpc": "2.0", "id": message["id"]}
        method = message["method"]
        raw_params = message.get("params")
        params: dict[str, object] = raw_params if isinstance(raw_params, dict) else {}
        if method == "initialize":
            answer["result"] = {
                "protocolVersion": params.get("protocolVersion") or _DEFAULT_PROTOCOL,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "plexum-host (offline)", "version": "1"},
            }
        elif method == "tools/list":
            answer["result"] = {"tools": []}
        elif method == "tools/call":
            answer["result"] = {"content": [{"type": "text", "text": reason}], "isError": True}
        elif method == "ping":
            answer["result"] = {}
        else:
            answer["error"] = {"code": -32601, "message": f"method not found: {method}"}
        sys.stdout.buffer.write(json.dumps(answer).encode() + b"\n")
        sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    # Run as a file (``python -I -S relay.py mcp-host``): see relay_command.
    raise SystemExit(relay_main())
