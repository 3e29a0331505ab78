"""Names and places derived from an agent id: the codex MCP server name, the tool namespace the
model sees, and the bridge socket."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from pathlib import Path

from .._io.files import ensure_private_dir, private_runtime_dir
from ..errors import BridgeError

__all__ = [
    "SERVER_PREFIX",
    "SOCKET_DIR_ENV",
    "default_socket_dir",
    "ensure_socket_dir",
    "key_path",
    "mcp_namespace",
    "server_name",
    "socket_path",
    "write_key",
]

RUNTIME_NAME = "plexum-openai-provider"
SERVER_PREFIX = "plexum-host-"
SOCKET_DIR_ENV = "PLEXUM_SOCKET_DIR"
_PLAIN = re.compile(r"[A-Za-z0-9_]{1,40}")
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux; keep a margin


def server_name(agent_id: str) -> str:
    """``plexum-host-<id>`` for a plain id; otherwise the id with every character outside
    ``[A-Za-z0-9_]`` made ``_``, cut to 32, and a hash of the whole id, so that distinct ids always
    give distinct names (and distinct tool namespaces: codex maps ``-`` to ``_`` there)."""
    if _PLAIN.fullmatch(agent_id):
        return SERVER_PREFIX + agent_id
    digest = hashlib.sha256(agent_id.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", agent_id)[:32]
    return f"{SERVER_PREFIX}{cleaned}_{digest}"


def mcp_namespace(name: str) -> str:
    """The namespace codex gives a server's tools: ``mcp__`` + the name, every character outside
    ``[A-Za-z0-9_]`` turned into ``_`` (codex 0.163/0.169)."""
    return "mcp__" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def default_socket_dir() -> Path:
    override = os.environ.get(SOCKET_DIR_ENV)
    return Path(override) if override else private_runtime_dir(RUNTIME_NAME)


def socket_path(agent_id: str, codex_home: Path, socket_dir: Path | None = None) -> Path:
    """Stable per (CODEX_HOME, agent): the same across turns and plugin restarts; short whatever
    the id (a hash names the file)."""
    folder = socket_dir or default_socket_dir()
    key = f"{os.path.abspath(codex_home)}\0{agent_id}".encode("utf-8", "surrogatepass")
    path = folder / f"{hashlib.sha256(key).hexdigest()[:20]}.sock"
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        raise BridgeError(
            f"the host-tool socket path {path} is longer than {_MAX_SOCKET_PATH} bytes; set"
            f" {SOCKET_DIR_ENV} to a shorter folder",
            path=str(path),
        )
    return path


def ensure_socket_dir(folder: Path) -> None:
    """Create the folder 0700, or check that the existing one is ours, not a link, and 0700."""
    try:
        ensure_private_dir(folder)
    except OSError as exc:
        raise BridgeError(str(exc), path=str(folder)) from None


def key_path(socket: Path) -> Path:
    """Where the relay of the agent of ``socket`` reads the agent's secret."""
    return socket.with_suffix(".key")


def write_key(path: Path, key: bytes) -> None:
    """The secret, in a new 0600 file (an old one, left by a plugin that was killed, is
    replaced; a link is never followed)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, key + b"\n")
    finally:
        os.close(fd)
