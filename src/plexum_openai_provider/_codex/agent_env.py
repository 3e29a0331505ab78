"""The environment a confined agent's commands get: what programs need, and what the operator
names (``agent_env``); nothing else of the plugin's.

codex builds each command's environment from its own (which is the plugin's: API keys, tokens,
passwords, whatever the daemon was started with) by its ``shell_environment_policy`` (codex-rs
``core/src/exec_env.rs``, 0.163-0.171): start from ``inherit`` (``all``, ``core`` or ``none``);
unless ``ignore_default_excludes``, drop names matching ``*KEY*``, ``*SECRET*``, ``*TOKEN*``;
drop ``exclude``; add ``set``; then, if ``include_only`` is not empty, keep only the names
matching it (case-insensitive globs). codex adds ``CODEX_THREAD_ID`` after all of that. Its
default passes everything: ``env`` in a confined command printed ``OPENAI_API_KEY`` and every
other secret of the daemon.

Name patterns cannot tell a secret (``DATABASE_PASSWORD``, ``SLACK_BOT_TOKEN``... or any name at
all) from a setting, so the plugin gives an allowlist, ``include_only``:

* :data:`PROGRAMS_NEED`: where programs are and whose they run as (``PATH``, ``HOME``, ``USER``,
  ``LOGNAME``, ``SHELL``), language and time (``LANG``, ``LANGUAGE``, ``LC_*``, ``TZ``),
  ``TERM``, where TLS trust anchors are when relocated (``SSL_CERT_FILE``, ``SSL_CERT_DIR``), and
  where the PATH's toolchains keep their versions (``PYENV_ROOT``, ``PYENV_VERSION``,
  ``NVM_DIR``, ``CARGO_HOME``, ``RUSTUP_HOME``, ``RUSTUP_TOOLCHAIN``, ``GOROOT``, ``GOPATH``);
  not ``TMPDIR``: a confined command has a private ``/tmp``, and the daemon's TMPDIR is not
  writable there;
* the process guard's mark (``PLEXUM_CODEX_OWNER``: what codex's children carry, so that what a
  run leaves is found wherever it was re-parented; :mod:`.guard`);
* the operator's ``agent_env.pass`` (names, or prefixes ending in ``*``; the values are the
  plugin's own, never written on a command line) and ``agent_env.set`` (values, given to codex as
  config: on the exec engine they are on codex's command line, which local users can read, so a
  secret belongs in ``pass``).

Commands run in a plain shell, not a login shell (``allow_login_shell = false``, codex
0.163+): a login shell reads the daemon user's profile, which may reset ``PATH`` (Debian's
``/etc/profile`` does, for root: an agent's ``python3`` was ``/usr/bin/python3`` on some turns and
pyenv's on others, depending on whether codex's snapshot of the login shell was ready), and codex
would source that snapshot, taken outside the sandbox, in every command. The readable folders are
computed from the plugin's ``PATH``, and that is the ``PATH`` commands get.

``ignore_default_excludes`` is on: what is allowed is named, and a name the operator passes
(``GITHUB_TOKEN``) must not be dropped for its spelling. Unconfined (``sandbox: "none"``) codex
keeps its default: every variable reaches the agent's commands, as it always did. The MCP relay
is not a shell command: codex gives it only its own ``env`` table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import AgentEnvConfig
from .watchdog import OWNER_ENV

__all__ = ["PROGRAMS_NEED", "AgentEnv"]

PROGRAMS_NEED: tuple[str, ...] = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TERM",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "NVM_DIR",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOROOT",
    "GOPATH",
)


@dataclass(frozen=True)
class AgentEnv:
    """What reaches a confined agent's commands: :data:`PROGRAMS_NEED`, the guard's mark, the
    names in ``passed`` (from the plugin's environment) and ``values``."""

    passed: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: AgentEnvConfig) -> AgentEnv:
        return cls(tuple(config.pass_), dict(config.set))

    def names(self) -> list[str]:
        """Every name (or ``PREFIX*``) that may reach a command."""
        names = [*PROGRAMS_NEED, OWNER_ENV, *self.passed, *self.values]
        return list(dict.fromkeys(names))

    def config(self) -> dict[str, Any]:
        """codex's ``shell_environment_policy`` for it, and no login shell."""
        prefix = "shell_environment_policy"
        return {
            "allow_login_shell": False,
            f"{prefix}.inherit": "all",
            f"{prefix}.ignore_default_excludes": True,
            f"{prefix}.include_only": self.names(),
            f"{prefix}.set": dict(self.values),
        }
