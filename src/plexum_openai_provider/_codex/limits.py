"""What one agent's commands may use: processes, memory, file size, a CPU share.

One codex app-server runs every agent's commands, so the limits cannot be codex's own: they are
attached to each command as codex starts it. codex (0.163-0.171) starts every sandboxed command
through its ``codex-linux-sandbox`` helper (its own binary under that name), with
``--sandbox-policy-cwd <the thread's cwd>``: a command without a terminal runs the helper by the
path codex fixed at start-up (the ``codex-linux-sandbox`` link in its per-process folder
``$CODEX_HOME/tmp/arg0-linux/codex-arg0*``), a command with ``tty: true`` runs whichever
``codex-linux-sandbox`` comes first on the command's ``PATH`` (portable-pty looks the name up;
0.163 and 0.169: with no such folder there was none, and every terminal command failed "No viable
candidates found in PATH"; 0.171 runs the link's path).
So the plugin puts its own helper in both places: in place of that link once the app-server has
made it (:meth:`Limiter.adopt`), and in a folder of its own first on codex's ``PATH``
(:meth:`Limiter.env`). The helper, a few lines of bash (:data:`BASH_HELPER`), moves itself into the
cgroup of the workspace codex names, lowers its rlimits, and execs codex's real helper: the
sandbox, and everything the command starts, are born inside the agent's bounds. Nothing of it is
reachable from inside the sandbox: the cgroup filesystem is not mounted there, and a lowered
hard rlimit cannot be raised again.

``codex exec`` is one process per turn: the plugin moves it into the agent's cgroup and lowers its
file-size limit as soon as it is started (codex runs no command before the model's first answer),
and every command inherits both.

Where codex finds no folder of its own (it refuses to make one when ``CODEX_HOME`` is under the
temporary folder), an app-server's commands without a terminal run codex's binary directly, and
only ``codex exec`` turns and terminal commands are bounded: :meth:`Limiter.describe` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import shlex
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import HostConfig
from .cgroups import CgroupTree, CpuMemPids, open_cgroups

__all__ = ["HELPER_NAME", "AgentLimits", "Limiter", "default_memory_mb"]

log = logging.getLogger(__name__)

HELPER_NAME = "codex-linux-sandbox"
# A dozen agents on one machine: each may use a share, none all of it.
DEFAULT_PROCESSES = 1024
DEFAULT_FILE_SIZE_MB = 1024
DEFAULT_CPU_WEIGHT = 100  # an equal share with the plugin and each other agent
MEMORY_SHARE = 4  # an agent may use a quarter of the machine's memory by default
MB = 1 << 20
FOLDER_WAIT_S = 2.0  # codex exec makes its helper folder first thing (measured: milliseconds)


def default_memory_mb() -> int:
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return 2048
    return max(256, total // MEMORY_SHARE // MB)


@dataclass(frozen=True)
class AgentLimits:
    processes: int
    memory_mb: int
    file_size_mb: int
    cpu_weight: int

    @classmethod
    def from_config(cls, config: HostConfig) -> AgentLimits:
        given = config.agent_limits
        return cls(
            processes=given.processes if given and given.processes else DEFAULT_PROCESSES,
            memory_mb=given.memory_mb if given and given.memory_mb else default_memory_mb(),
            file_size_mb=(
                given.file_size_mb if given and given.file_size_mb else DEFAULT_FILE_SIZE_MB
            ),
            cpu_weight=given.cpu_weight if given and given.cpu_weight else DEFAULT_CPU_WEIGHT,
        )


# The helper codex runs as its `codex-linux-sandbox`, for every sandboxed command: bash where
# there is one (7.8 ms a start here, against 67 ms for Python under the same load), builtins only
# but for one subshell; the workspace's cgroup is found in the plugin's map (`key<TAB>path`
# lines), bash having no hash. Both fail closed: a command whose agent's cgroup cannot be joined
# does not run.
BASH_HELPER = """#!/bin/bash
# plexum-openai-provider: codex runs this as its codex-linux-sandbox helper, for each sandboxed
# command. It joins the cgroup of the workspace codex names, lowers its rlimits and execs codex.
CGROUPS=({cgroups})
cwd=.
args=("$@")
for ((i = 0; i + 1 < ${{#args[@]}}; i++)); do
    if [[ ${{args[i]}} == --sandbox-policy-cwd ]]; then cwd=${{args[i+1]}}; break; fi
done
if ((${{#CGROUPS[@]}})); then
    real=$(cd -P -- "$cwd" 2>/dev/null && pwd -P)
    key=
    while IFS=$'\t' read -r k path; do
        if [[ -n $real && $path == "$real" ]]; then key=$k; break; fi
    done < {map} 2>/dev/null
    if [[ -z $key ]]; then
        echo "the agent's limits could not be applied: no cgroup for $cwd" >&2
        exit 126
    fi
    for base in "${{CGROUPS[@]}}"; do
        if ! {{ echo $$ > "$base/$key/cgroup.procs"; }} 2>/dev/null; then
            echo "the agent's limits could not be applied (cgroup $base/$key)" >&2
            exit 126
        fi
    done
fi
{ulimits}
exec -a codex-linux-sandbox {codex} "$@"
"""
# bash's ulimit: file size and data in KiB; a lower hard limit already in force stays.
_ULIMIT = {"RLIMIT_FSIZE": ("-f", 1024), "RLIMIT_NPROC": ("-u", 1), "RLIMIT_DATA": ("-d", 1024)}
# Where there is no bash: stdlib only, started with -I -S (nothing from the command's
# environment changes what Python loads).
PYTHON_HELPER = """#!{python} -IS
# plexum-openai-provider: codex runs this as its codex-linux-sandbox helper, for each sandboxed
# command. It joins the cgroup of the workspace codex names, lowers its rlimits and execs codex.
import hashlib, os, resource, sys
CGROUPS = {cgroups!r}
RLIMITS = {rlimits!r}
CODEX = {codex!r}
args = sys.argv[1:]
cwd = args[args.index("--sandbox-policy-cwd") + 1] if "--sandbox-policy-cwd" in args[:-1] else "."
real = os.path.realpath(cwd).encode("utf-8", "surrogateescape")
key = "ws-" + hashlib.sha256(real).hexdigest()[:16]
for base in CGROUPS:
    try:
        with open(os.path.join(base, key, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    except OSError as exc:
        sys.stderr.write("the agent's limits could not be applied (cgroup %s): %s\\n" % (key, exc))
        sys.exit(126)
for name, value in RLIMITS:
    which = getattr(resource, name)
    hard = resource.getrlimit(which)[1]
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(which, (value, value))
os.execv(CODEX, ["codex-linux-sandbox"] + args)
"""


class Limiter:
    """The limits and how they are enforced on this machine, for the provider's life."""

    def __init__(
        self,
        limits: AgentLimits,
        tree: CgroupTree | None,
        why: str,
        native: str,
        bash: bool | None = None,
    ):
        self.limits = limits
        self.tree = tree
        self.why = why  # why there are no cgroups ("" when there are)
        self.native = native  # codex's own binary
        _sweep_helpers()
        self.helper_dir = Path(tempfile.mkdtemp(prefix=f"plexum-helper-{os.getpid()}-"))
        self.adopted: bool | None = None  # the app-server's link replaced (None: no app-server)
        self.bash = os.access("/bin/bash", os.X_OK) if bash is None else bash
        self._workspaces: dict[str, str] = {}  # cgroup key → the workspace's real path
        self._write_helper(self.helper_dir / HELPER_NAME, native)

    @classmethod
    def open(cls, limits: AgentLimits, native: str) -> Limiter:
        tree, why = open_cgroups(
            CpuMemPids(limits.processes, limits.memory_mb * MB, limits.cpu_weight)
        )
        limiter = cls(limits, tree, why, native)
        log.info("limits: %s (%s)", limiter.mechanism, limiter.limits)
        if tree is None:
            log.warning("limits: no cgroups for agents (%s): rlimits only", why)
        return limiter

    @property
    def mechanism(self) -> str:
        return self.tree.mechanism if self.tree is not None else "rlimits only"

    def rlimits(self) -> list[tuple[str, int]]:
        """What the helper lowers: file size always; processes where no pids cgroup counts
        them (RLIMIT_NPROC counts every process of the user, and does not apply to root);
        memory per process where no memory cgroup does."""
        out = [("RLIMIT_FSIZE", self.limits.file_size_mb * MB)]
        if self.tree is None:
            out.append(("RLIMIT_NPROC", self.limits.processes))
        if self.tree is None or "memory" not in self.tree.controllers:
            out.append(("RLIMIT_DATA", self.limits.memory_mb * MB))
        return out

    def _write_helper(self, path: Path, codex: str) -> None:
        folders = self.tree.folders() if self.tree is not None else []
        if self.bash:
            ulimits = []
            for name, value in self.rlimits():
                flag, unit = _ULIMIT[name]
                ulimits.append(f"ulimit -S -H {flag} {value // unit} 2>/dev/null")
            text = BASH_HELPER.format(
                cgroups=" ".join(shlex.quote(f) for f in folders),
                map=shlex.quote(str(self.helper_dir / "workspaces")),
                ulimits="\n".join(ulimits),
                codex=shlex.quote(codex),
            )
        else:
            text = PYTHON_HELPER.format(
                python=sys.executable, cgroups=folders, rlimits=self.rlimits(), codex=codex
            )
        _replace(path, text, 0o755)

    def env(self, env: dict[str, str]) -> dict[str, str]:
        """codex's environment: the plugin's helper first on ``PATH``, where a terminal command
        looks for codex's helper (codex puts its own folder before it when it has one)."""
        path = env.get("PATH", os.defpath)
        return {**env, "PATH": f"{self.helper_dir}{os.pathsep}{path}"}

    def prepare(self, workspace: str) -> None:
        """Before a turn: the workspace's cgroup exists, and the helper's map names it (OSError
        if it cannot be made)."""
        if self.tree is None:
            return
        key = self.tree.prepare(workspace)
        if key not in self._workspaces:
            self._workspaces[key] = os.path.realpath(workspace)
            lines = "".join(f"{k}\t{p}\n" for k, p in self._workspaces.items() if "\n" not in p)
            _replace(self.helper_dir / "workspaces", lines, 0o644)

    def join(self, pid: int, workspace: str) -> None:
        """A ``codex exec`` whose commands cannot go through the helper: into the agent's
        cgroup whole, with the file-size limit lowered (and the processes limit where there is
        no cgroup); its commands inherit both."""
        if self.tree is not None:
            self.tree.join(pid, workspace)
        for name, value in self.rlimits():
            if name == "RLIMIT_DATA":
                continue  # codex's own memory is not the agent's
            with contextlib.suppress(OSError, ValueError):
                resource.prlimit(pid, getattr(resource, name), (value, value))

    def expects_folder(self, env: dict[str, str]) -> bool:
        """Does codex make its helper folder with this environment? It refuses for a
        CODEX_HOME under the temporary folder (``std::env::temp_dir()``: TMPDIR, else /tmp)."""
        home = Path(env.get("CODEX_HOME") or Path(env.get("HOME", "/")) / ".codex")
        temporary = Path(env.get("TMPDIR") or "/tmp")
        return not home.is_relative_to(temporary)

    def adopt(self, pid: int) -> bool:
        """The app-server ``pid`` (or its native child, under npm's node wrapper) is started:
        put the helper in place of the ``codex-linux-sandbox`` link in codex's own folder."""
        self.adopted = self._replace_link(pid)
        if not self.adopted:
            log.warning(
                "limits: codex app-server %d made no helper folder (CODEX_HOME under the"
                " temporary folder?): its commands without a terminal run unbounded",
                pid,
            )
        return self.adopted

    def _replace_link(self, pid: int) -> bool:
        folder = _arg0_folder(pid)
        if folder is None:
            return False
        link = folder / HELPER_NAME
        try:
            target = os.readlink(link)
        except OSError:
            return False  # not codex's link (already the helper, or changed): left as it is
        self._write_helper(link, target)
        log.debug("limits: codex %d runs its commands through %s", pid, link)
        return True

    async def gate_exec(self, pid: int, workspace: str, env: dict[str, str]) -> None:
        """Before a ``codex exec`` gets its prompt: the helper in place of its link (codex
        makes its folder within milliseconds of starting), or, where it makes none, the whole
        codex exec in the agent's cgroup (then codex's own memory counts in the agent's, and a
        command that fills it may end the turn rather than itself). Ends codex if neither can
        be done: no command runs unbounded."""
        try:
            if self.expects_folder(env):
                deadline = time.monotonic() + FOLDER_WAIT_S
                while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
                    if self._replace_link(pid):
                        return
                    await asyncio.sleep(0.005)
                log.warning("limits: codex exec %d made no helper folder in time", pid)
            self.join(pid, workspace)
        except Exception as exc:  # whatever it was, no prompt for an unbounded codex
            log.error("limits: codex exec %d cannot be bounded (%s): ended", pid, exc)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def describe(self) -> dict[str, Any]:
        """What ``initialize`` reports."""
        out: dict[str, Any] = {
            "processes": self.limits.processes,
            "memory_mb": self.limits.memory_mb,
            "file_size_mb": self.limits.file_size_mb,
            "cpu_weight": self.limits.cpu_weight,
            "mechanism": self.mechanism,
        }
        if self.tree is None:
            out["reason"] = self.why
        if self.adopted is False:
            out["unbounded"] = (
                "the app-server's commands without a terminal: codex made no helper folder"
                " (CODEX_HOME is under the temporary folder)"
            )
        return out

    def close(self) -> None:
        if self.tree is not None:
            self.tree.close()
        shutil.rmtree(self.helper_dir, ignore_errors=True)


def _sweep_helpers() -> None:
    """Helper folders of plugin processes that were killed (a closed one removes its own)."""
    root = Path(tempfile.gettempdir())
    with contextlib.suppress(OSError):
        for entry in root.glob("plexum-helper-*-*"):
            pid = entry.name.split("-")[2]
            if (
                pid.isdigit()
                and not os.path.exists(f"/proc/{pid}")
                and entry.lstat().st_uid == os.getuid()
            ):
                shutil.rmtree(entry, ignore_errors=True)


def _replace(path: Path, text: str, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.plexum")
    temporary.write_text(text)
    temporary.chmod(mode)
    os.replace(temporary, path)


def _arg0_folder(pid: int) -> Path | None:
    """The folder whose ``.lock`` codex (``pid`` or a child of it) holds: its helper links."""
    for candidate in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{candidate}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{candidate}/fd/{fd}")
                    folder = os.path.dirname(target)
                    if target.endswith("/.lock") and os.path.basename(folder).startswith(
                        "codex-arg0"
                    ):
                        return Path(folder)
    return None


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            if int(stat[stat.rfind(b")") + 2 :].split()[1]) == pid:
                out.append(int(entry))
    return out
