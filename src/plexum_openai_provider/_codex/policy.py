"""What an agent's codex may reach and do: its sandbox, and the features codex offers its model.

**The sandbox** is codex's own (bubblewrap + seccomp on Linux), given as a named permission
profile (codex 0.163+ ``default_permissions`` and ``permissions.<name>.*``) that both engines pass
with every run (``-c`` on exec, the thread's ``config`` and ``permissions`` on app-server). Under
it, what codex runs for the agent (shell commands, apply_patch, code mode's tools; not the MCP
relay, which codex starts itself):

* writes only its workspace (and ``.git`` in it) and a private ``/tmp`` (a tmpfs of its own);
* reads its workspace, what codex calls ``:minimal`` (``/bin /etc /lib* /sbin /usr /dev`` and its
  own ``/proc``), codex's own package folder (bubblewrap runs codex's binary as its helper), the
  toolchains of the daemon's ``PATH`` (pyenv, nvm, cargo, ``~/.local``) and what the operator
  adds (``sandbox_readable``); nothing else: not another agent's workspace, not ``CODEX_HOME``
  (credentials, every agent's sessions), not the plugin's socket and lock folders, not the rest
  of the user's home;
* sees only its own processes, and has no network (``socket()`` fails with EPERM) unless the
  operator allows it (``sandbox_network``);
* cannot rewrite the plugin's records in the workspace (the thread id, the owner), which would
  point its next turn at another agent's thread.

Measured on this machine with codex 0.163 and 0.171 (``codex sandbox`` with such a profile).
Approvals stay off: a refused operation fails inside the turn and the model reads the error.

**Features**: codex 0.163 turns on, among others, sub-agents (``multi_agent``: a spawned agent is
a thread of its own that calls the model by itself and, on app-server, outlives the turn), the
logged-in account's connectors (``apps``), browser and computer use, and goals (codex working on
by itself). The host can see none of these, and some reach beyond the agent's confinement: they
are off (:data:`FEATURES_OFF`) unless the operator turns one on (``codex_features``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "FEATURES_OFF",
    "PROFILE",
    "UNCONFINED",
    "AgentPolicy",
    "readable_folders",
    "toolchain_folders",
]

PROFILE = "plexum-agent"
FEATURES_OFF: Mapping[str, bool] = {
    "multi_agent": False,
    "multi_agent_v2": False,
    "apps": False,
    "browser_use": False,
    "browser_use_external": False,
    "in_app_browser": False,
    "computer_use": False,
    "goals": False,
}


@dataclass(frozen=True)
class AgentPolicy:
    """The sandbox mode in force and why, what it lets an agent read besides its workspace, and
    the codex features; :meth:`config` is what codex is given for it."""

    mode: Literal["workspace", "none"]
    reason: str
    readable: tuple[str, ...] = ()
    network: bool = False
    protected: tuple[str, ...] = ()  # workspace files the agent may read but not write
    features: Mapping[str, bool] = field(default_factory=lambda: dict(FEATURES_OFF))
    # Unconfined because codex's sandbox does not work here (not because the operator said so).
    unavailable: bool = False

    @property
    def confined(self) -> bool:
        return self.mode == "workspace"

    def config(self) -> dict[str, Any]:
        """codex config keys and values (the same as ``-c key=value`` on exec, and as a thread's
        ``config`` on app-server)."""
        out: dict[str, Any] = {f"features.{name}": on for name, on in self.features.items()}
        if not self.confined:
            return out
        roots: dict[str, str] = {".": "write", ".git": "write"}
        roots.update({name: "read" for name in self.protected})
        filesystem: dict[str, Any] = {":minimal": "read"}
        filesystem.update({folder: "read" for folder in self.readable})
        filesystem[":workspace_roots"] = roots
        out["default_permissions"] = PROFILE
        out[f"permissions.{PROFILE}.filesystem"] = filesystem
        out[f"permissions.{PROFILE}.network.enabled"] = self.network
        return out

    def describe(self) -> dict[str, Any]:
        """What ``initialize`` reports."""
        return {
            "mode": self.mode,
            "reason": self.reason,
            "readable": list(self.readable),
            "network": self.network if self.confined else True,
        }


# What a run is given when nobody says otherwise (tests of the turn logic; embedding code that
# builds a RunSpec by hand): codex as the seed ran it, but with the features above off.
UNCONFINED = AgentPolicy("none", 'sandbox is "none"')


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def toolchain_folders(path_env: str) -> list[str]:
    """The folders the daemon's ``PATH`` needs readable for its programs to run: for an entry
    in a hidden folder (``~/.pyenv/shims``, ``~/.nvm/versions/node/v22/bin``, ``~/.cargo/bin``,
    ``~/.local/bin``) that folder, whole (pyenv's shims run ``~/.pyenv/libexec``; pipx's links
    point into ``~/.local/share``); for ``…/bin`` its parent; else the entry itself."""
    out: list[str] = []
    for entry in path_env.split(os.pathsep):
        if not entry or not os.path.isabs(entry) or not os.path.isdir(entry):
            continue
        for real in dict.fromkeys((os.path.normpath(entry), os.path.realpath(entry))):
            parts = Path(real).parts
            hidden = next((i for i, part in enumerate(parts) if part.startswith(".")), None)
            if hidden is not None:
                folder = str(Path(*parts[: hidden + 1]))
            elif parts[-1] in ("bin", "sbin", "shims") and len(parts) > 2:
                folder = str(Path(*parts[:-1]))
            else:
                folder = real
            out.append(folder)
    return list(dict.fromkeys(out))


def readable_folders(
    *,
    codex_package: str,
    path_env: str,
    operator: Sequence[str],
    never: Iterable[str],
    home: str | None,
) -> tuple[list[str], list[str]]:
    """(the folders an agent may read besides its workspace, what was left out and why).

    codex's package (its native binary: bubblewrap runs it as its helper; its
    ``codex-resources`` hold the bubblewrap it ships) and the PATH's toolchains are added, unless
    one would expose a folder in ``never`` (CODEX_HOME, the plugin's socket and lock folders) or
    is the user's home or ``/``; ``operator`` folders are the operator's ``sandbox_readable``,
    checked by the caller."""
    package = codex_package
    guarded = [os.path.realpath(p) for p in never]
    left_out: list[str] = []
    out: list[str] = []
    for folder in [package, *toolchain_folders(path_env)]:
        folder = os.path.realpath(folder)
        if folder == "/" or (home is not None and folder == os.path.realpath(home)):
            left_out.append(f"{folder} (the whole home or root)")
            continue
        exposed = [g for g in guarded if _within(g, folder) or _within(folder, g)]
        if exposed:
            left_out.append(f"{folder} (it holds {exposed[0]})")
            continue
        out.append(folder)
    out += operator
    # What :minimal has, or another folder here holds, need not be named again.
    minimal = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc")
    kept = [
        f
        for i, f in enumerate(out)
        if f not in out[:i]
        and not any(_within(f, m) for m in minimal)
        and not any(_within(f, other) for other in out if other != f)
    ]
    return kept, left_out
