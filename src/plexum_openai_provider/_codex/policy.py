"""What an agent's codex may reach and do: its sandbox, and the features codex offers its model.

**The sandbox** is codex's own (bubblewrap + seccomp on Linux), given as a named permission
profile (codex 0.163+ ``default_permissions`` and ``permissions.<name>.*``) that both engines pass
with every run (``-c`` on exec, the thread's ``config`` and ``permissions`` on app-server). Under
it, what codex runs for the agent (shell commands, apply_patch, code mode's tools; not the MCP
relay, which codex starts itself):

* writes only its workspace (``.git`` in it included, see below) and a private ``/tmp`` (a tmpfs
  of its own);
* reads its workspace, what codex calls ``:minimal`` (``/bin /etc /lib* /sbin /usr /dev`` and its
  own ``/proc``), codex's own package folder (bubblewrap runs codex's binary as its helper), what
  the daemon's ``PATH`` needs (:mod:`.readable`: the PATH's folders and what their programs
  resolve into, never a credential file) and what the operator adds (``sandbox_readable``);
  nothing else: not another agent's workspace, not ``CODEX_HOME`` (credentials, every agent's
  sessions), not the plugin's socket and lock folders, not the rest of the user's home;
* gets an environment of what programs need and what the operator names (:mod:`.agent_env`),
  none of the daemon's secrets;
* sees only its own processes, and has no network (``socket()`` fails with EPERM) unless the
  operator allows it (``sandbox_network``, which gives it the host's network namespace: its
  abstract unix sockets too);
* cannot rewrite the plugin's records in the workspace (the thread id, the owner), which would
  point its next turn at another agent's thread.

**The workspace's ``.git``**, and why it is named as it is. codex keeps a writable root's
top-level ``.git``, ``.codex`` and ``.agents`` read-only (codex-rs ``protocol/src/
permissions.rs``, ``PROTECTED_METADATA_PATH_NAMES``, 0.163-0.171): a ``.git`` that exists (a
folder, or a file and the ``gitdir:`` it points to) is bound read-only, a missing one is covered
by an empty read-only placeholder, so ``git init`` and ``git commit`` fail. Naming ``.git``
writable lifts that, but codex then binds whatever ``.git`` resolves to: with ``ln -s / .git``
in one command, the next one had the whole disk writable (codex 0.163, 0.169, 0.171; bubblewrap
follows the link for the bind). And codex refuses a read-only or deny entry that crosses a
writable symlink ("cannot enforce sandbox read-only path … because it crosses writable
symlink", checked as each command's sandbox is built), because binding a link's target only
protects a snapshot. So the profile names, for a workspace whose ``.git`` is a real folder when
the run starts:

* ``.git`` writable, so that git works, and
* a read-only entry beneath it, :data:`GIT_GUARD`, that exists only to make codex refuse the
  command when ``.git`` is a symlink at the moment that command's sandbox is built: a link in
  its place is never followed into a bind (the agent reads codex's error);

and before a confined run the plugin makes a missing ``.git`` an empty folder and the guard an
empty file of its own (:func:`prepare_git_folder`; git treats an empty ``.git`` as no repository,
and ``git init`` fills it). The guard must exist: codex covers a missing read-only path with a
placeholder file it creates for the command and removes when that command ends, and that
removal detaches the placeholder's mount in every other command's sandbox still running, so a
second command could then put a link there, and every later command in the workspace failed
"crosses writable symlink" (codex 0.163). An existing file is bound read-only in each command's
sandbox, and nothing removes it when a command ends. Whatever is at the guard's path before a
run (a link, a folder, a file an unconfined process left) is removed, links not followed, and
the file made again. Inside every command's sandbox ``.git`` and the guard are then mount
points, which no process of the agent can rename, remove or replace (EBUSY), so ``.git`` cannot
be swapped between two commands or while one is being set up (measured: a swap raced from
outside the sandbox reached 1 of 30 setups; from inside it cannot start). A ``.git`` that is a file (a worktree's
``gitdir:`` pointer) or a link when the run starts is not named: codex's own protection applies
(the file and its gitdir read-only; a link refused). A repository the agent clones or creates
below the top has its ``.git`` as a plain folder of the workspace, bound by nothing.

Measured on this machine with codex 0.163, 0.169 and 0.171 (``codex sandbox`` with such a
profile). Approvals stay off: a refused operation fails inside the turn and the model reads the
error.

**Features**: codex 0.163 turns on, among others, sub-agents (``multi_agent``: a spawned agent is
a thread of its own that calls the model by itself and, on app-server, outlives the turn), the
logged-in account's connectors (``apps``), browser and computer use, and goals (codex working on
by itself). The host can see none of these, and some reach beyond the agent's confinement: they
are off (:data:`FEATURES_OFF`) unless the operator turns one on (``codex_features``).

**Sub-agents** are more than a feature: a catalog model's own metadata (``multi_agent_version:
"v2"`` of gpt-6.1-sol on 0.163/0.169, gpt-6.2-sol on 0.171) offers codex's ``collaboration``
tools (``spawn_agent``, ``wait_agent``, ``send_message``, …) and a ``<multi_agent_role>``
developer message with ``multi_agent`` and ``multi_agent_v2`` both off; ``agents.max_threads=0``
is refused ("at least 1"). ``agents.enabled=false`` removes them on every model (0.163, 0.169,
0.171: the first model request has no ``collaboration`` namespace and no role message). Turning
``multi_agent`` or ``multi_agent_v2`` on in ``codex_features`` turns them back on
(:func:`sub_agent_config`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .agent_env import AgentEnv
from .project_docs import project_docs_possible
from .readable import exposed

__all__ = [
    "FEATURES_OFF",
    "GIT_GUARD",
    "PROFILE",
    "UNCONFINED",
    "AgentPolicy",
    "prepare_git_folder",
    "prepare_workspace",
    "sub_agent_config",
]

PROFILE = "plexum-agent"
GIT_GUARD = ".git/.plexum-no-link"
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


SUB_AGENT_FEATURES = ("multi_agent", "multi_agent_v2")


def sub_agent_config(features: Mapping[str, bool]) -> dict[str, Any]:
    """codex's ``agents.enabled``: on only where the operator turned a sub-agent feature on."""
    return {"agents.enabled": any(features.get(name, False) for name in SUB_AGENT_FEATURES)}


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
    env: AgentEnv = field(default_factory=AgentEnv)

    @property
    def confined(self) -> bool:
        return self.mode == "workspace"

    def config(self, *, git_folder: bool = True) -> dict[str, Any]:
        """codex config keys and values (the same as ``-c key=value`` on exec, and as a thread's
        ``config`` on app-server). ``git_folder``: the workspace's ``.git`` is a real folder
        (:func:`prepare_git_folder`): it is named writable, with its guard."""
        out: dict[str, Any] = {f"features.{name}": on for name, on in self.features.items()}
        # The plan tool: the agent's plan reaches the host (a `plan` event); codex 0.169 offers
        # it to no model unless asked, 0.163 only to some.
        out["tools.update_plan.enabled"] = True
        out.update(sub_agent_config(self.features))
        if not self.confined:
            return out
        roots: dict[str, str] = {".": "write"}
        if git_folder:
            roots.update({".git": "write", GIT_GUARD: "read"})
        roots.update({name: "read" for name in self.protected})
        # `:minimal`, not the system's folders by name: codex resolves a named folder to its
        # real path, so on a merged-/usr system `/bin` and `/lib64` (links) would be missing in
        # the sandbox (codex 0.163-0.171). With `:minimal`, codex resolves every entry of the
        # profile again on each turn (~20 lstat and readlink calls an entry): the profile stays
        # as short as it can.
        filesystem: dict[str, Any] = {":minimal": "read"}
        filesystem.update({folder: "read" for folder in self.readable})
        filesystem[":workspace_roots"] = roots
        out["default_permissions"] = PROFILE
        out[f"permissions.{PROFILE}.filesystem"] = filesystem
        out[f"permissions.{PROFILE}.network.enabled"] = self.network
        out.update(self.env.config())
        return out

    def for_workspace(self, workspace: str, others: Iterable[str] = ()) -> AgentPolicy:
        """The policy for a turn in ``workspace``: without a readable folder that holds it or
        ``others`` (other agents' workspaces), which would let the agent read what lies beside
        it there."""
        if not self.confined or not self.readable:
            return self
        spaces = [os.path.realpath(w) for w in (workspace, *others)]
        kept = tuple(f for f, real in self._real_readable if exposed(real, spaces) is None)
        return self if kept == self.readable else dataclasses.replace(self, readable=kept)

    @functools.cached_property
    def _real_readable(self) -> tuple[tuple[str, str], ...]:
        """Each readable folder with its real path, resolved once (they are the operator's and
        the daemon's PATH's, fixed at start; a turn resolved them all again)."""
        return tuple((f, os.path.realpath(f)) for f in self.readable)

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


def prepare_workspace(
    workspace: Path, codex_home: Path, extra_args: Sequence[str]
) -> tuple[bool, bool]:
    """A confined run's look at its workspace before codex has it, on both engines, in one
    worker thread (each hop to one waits behind other agents' file work): whether its ``.git``
    is a real folder (:func:`prepare_git_folder`), and whether codex would find no project
    instructions there (:mod:`.project_docs`: then it is told not to look)."""
    return prepare_git_folder(workspace), not project_docs_possible(
        workspace, codex_home, extra_args
    )


def prepare_git_folder(workspace: str | Path) -> bool:
    """Before a confined run: a missing ``.git`` in ``workspace`` becomes an empty folder, and
    :data:`GIT_GUARD` an empty file made now (whatever was there removed, links not followed).
    Whether ``.git`` is a real folder (not a link, not a file) with its guard, to be named
    writable."""
    path = os.path.join(workspace, ".git")
    with contextlib.suppress(OSError):  # there already, or not ours to make: looked at below
        os.mkdir(path, 0o755)
    try:
        folder = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:  # a link, a file, or unusable: codex's own protection applies
        return False
    name = os.path.basename(GIT_GUARD)
    try:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(os.lstat(name, dir_fd=folder).st_mode):
                shutil.rmtree(name, dir_fd=folder)
            else:
                os.unlink(name, dir_fd=folder)
        fd = os.open(
            name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444, dir_fd=folder
        )
        os.close(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(folder)
