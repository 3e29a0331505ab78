"""Registering an agent's bridge with codex, once, lazily, safely under concurrency.

``codex mcp add NAME --env PLEXUM_MCP_SOCKET=… --env PLEXUM_MCP_AGENT_ID=… -- <plugin> mcp-host``
writes the server's table into ``$CODEX_HOME/config.toml``. The table is then marked
``enabled = false`` and ``required = true``:

* disabled, because codex starts every enabled server on every ``codex exec`` of that CODEX_HOME:
  agent B's turn would start agent A's bridge and offer B's model A's tools. Each run enables only
  its own agent's server with ``-c mcp_servers.NAME.enabled=true`` (verified on codex 0.169);
* required, because codex silently leaves out a server that is not ready within about a second;
  with ``required`` it waits, so a turn's tools are always there.

``codex mcp add`` rewrites the whole file (and replaces an existing table whole), so every
registration runs under an exclusive ``flock`` on ``$CODEX_HOME/.plexum-mcp-registration.lock``
(other plugin processes) and an asyncio lock (this one); the state is checked again under the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from ..thread_store import atomic_write

__all__ = ["Registrar", "Registration", "bridge_command", "enable_overrides", "plugin_command"]

log = logging.getLogger(__name__)

SOCKET_ENV = "PLEXUM_MCP_SOCKET"
AGENT_ENV = "PLEXUM_MCP_AGENT_ID"
LOCK_NAME = ".plexum-mcp-registration.lock"


def plugin_command() -> list[str]:
    """The absolute command of this installed plugin (works under systemd's bare PATH): the console
    script beside this interpreter, else ``<python> -m plexum_openai_provider``."""
    script = Path(sys.executable).parent / "plexum-openai-provider-plugin"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "plexum_openai_provider"]


def bridge_command() -> list[str]:
    """What codex runs as the agent's MCP server: this interpreter on the relay's file, isolated
    and without ``site`` (``-I -S``). It is the same code as ``plexum-openai-provider-plugin
    mcp-host``, but starts about 30 ms sooner (measured here: 0.09 s against 0.12 s), which every
    tool turn pays because codex waits for the bridge. Absolute paths both: no PATH involved."""
    from . import relay

    return [sys.executable, "-I", "-S", str(Path(relay.__file__).resolve())]


@dataclass(frozen=True)
class Registration:
    name: str
    agent_id: str
    socket: Path
    command: tuple[str, ...]

    @property
    def env(self) -> dict[str, str]:
        return {SOCKET_ENV: str(self.socket), AGENT_ENV: self.agent_id}

    def matches(self, table: Any) -> bool:
        """Is codex's table for this server exactly what we would write?"""
        if not isinstance(table, dict):
            return False
        return (
            [table.get("command"), *(table.get("args") or [])] == [*list(self.command), "mcp-host"]
            and table.get("env") == self.env
            and table.get("enabled") is False
            and table.get("required") is True
        )


class Registrar:
    """Keeps the registrations of one CODEX_HOME correct. :meth:`ensure` is cheap when they are."""

    def __init__(self, codex: str, codex_home: Path, env: dict[str, str]) -> None:
        self.codex = codex
        self.codex_home = codex_home
        self.env = env
        self._lock = asyncio.Lock()
        self._checked: dict[str, tuple[float, int]] = {}

    @property
    def config_path(self) -> Path:
        return self.codex_home / "config.toml"

    def _stat_key(self) -> tuple[float, int]:
        try:
            info = self.config_path.stat()
        except FileNotFoundError:
            return (0.0, 0)
        return (info.st_mtime, info.st_size)

    def is_current(self, registration: Registration) -> bool:
        try:
            with self.config_path.open("rb") as f:
                config = tomllib.load(f)
        except (FileNotFoundError, tomllib.TOMLDecodeError):
            return False
        return registration.matches((config.get("mcp_servers") or {}).get(registration.name))

    def needs_check(self, registration: Registration) -> bool:
        """False when this very config file was found correct for the agent before."""
        return self._checked.get(registration.name) != self._stat_key()

    async def ensure(self, registration: Registration) -> bool:
        """Register (or refresh a stale registration). True if anything was written."""
        if self._checked.get(registration.name) == self._stat_key():
            return False  # checked against this very file before
        if self.is_current(registration):
            self._checked[registration.name] = self._stat_key()
            return False
        async with self._lock:
            self.codex_home.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.codex_home / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
                if self.is_current(registration):  # another process did it meanwhile
                    return False
                await self._codex_mcp_add(registration)
                self._mark(registration)
                log.info(
                    "registered codex MCP server %s for agent %r (socket %s)",
                    registration.name,
                    registration.agent_id,
                    registration.socket,
                )
            finally:
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        self._checked[registration.name] = self._stat_key()
        return True

    async def _codex_mcp_add(self, registration: Registration) -> None:
        argv: list[str] = [self.codex, "mcp", "add", registration.name]
        for key, value in registration.env.items():
            argv += ["--env", f"{key}={value}"]
        argv += ["--", *registration.command, "mcp-host"]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, "CODEX_HOME": str(self.codex_home)},
        )
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
        if proc.returncode != 0:
            raise RuntimeError(
                f"`codex mcp add {registration.name}` failed ({proc.returncode}):"
                f" {err.decode(errors='replace').strip()[-500:]}"
            )

    def _mark(self, registration: Registration) -> None:
        """Set ``enabled = false`` and ``required = true`` in the table codex wrote, keeping the
        rest of the file as it is (tomlkit preserves formatting and comments)."""
        document = tomlkit.parse(self.config_path.read_text(encoding="utf-8"))
        table = document["mcp_servers"][registration.name]
        table["enabled"] = False
        table["required"] = True
        atomic_write(self.config_path, tomlkit.dumps(document).encode("utf-8"))


def enable_overrides(name: str, tool_timeout_s: float) -> Sequence[str]:
    """The ``-c`` overrides that turn the agent's own server on for one run, and let a host tool
    take as long as the plugin allows (codex's own per-call limit would cut it off first)."""
    return (
        f"mcp_servers.{name}.enabled=true",
        f"mcp_servers.{name}.required=true",
        f"mcp_servers.{name}.tool_timeout_sec={tool_timeout_s + 10:g}",
    )
