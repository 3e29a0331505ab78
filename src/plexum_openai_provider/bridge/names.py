"""Names and places derived from an agent id: the codex MCP server name, the tool namespace the
model sees, and the bridge socket. Standard library only (``mcp-host`` imports this)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
from pathlib import Path

__all__ = [
    "SOCKET_DIR_ENV",
    "SocketDirError",
    "default_socket_dir",
    "ensure_socket_dir",
    "mcp_namespace",
    "server_name",
    "socket_path",
]

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
    if override:
        return Path(override)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and len(runtime) < 50 and os.path.isdir(runtime):
        return Path(runtime) / "plexum-openai-provider"
    return Path(f"/tmp/plexum-openai-provider-{os.getuid()}")


def socket_path(agent_id: str, codex_home: Path, socket_dir: Path | None = None) -> Path:
    """Stable per (CODEX_HOME, agent): the same across turns and plugin restarts, so that the
    registration written once stays valid; short whatever the id (a hash names the file)."""
    folder = socket_dir or default_socket_dir()
    key = f"{os.path.abspath(codex_home)}\0{agent_id}".encode("utf-8", "surrogatepass")
    path = folder / f"{hashlib.sha256(key).hexdigest()[:20]}.sock"
    if len(os.fsencode(path)) > _MAX_SOCKET_PATH:
        raise SocketDirError(
            f"socket path {path} is longer than {_MAX_SOCKET_PATH} bytes; set {SOCKET_DIR_ENV}"
            " to a shorter folder"
        )
    return path


class SocketDirError(Exception):
    pass


def ensure_socket_dir(folder: Path) -> None:
    """Create the folder 0700, or check that the existing one is ours, not a link, and 0700."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise SocketDirError(f"{folder} is not a folder (a link or a file): refusing to use it")
    if info.st_uid != os.getuid():
        raise SocketDirError(
            f"{folder} belongs to uid {info.st_uid}, not to us: refusing to use it"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(folder, 0o700)
