"""Control groups for agents' commands: one per workspace, in a subtree of the plugin's own.

Which kind this machine gives the plugin is found out at start-up, by trying:

* **cgroup v2, delegated** (systemd ``Delegate=yes``; the example unit sets it): the plugin's own
  cgroup is writable. The plugin moves itself into a leaf ``plexum-<pid>/plugin`` (cgroup v2 lets
  no process live in a cgroup whose controllers are handed down), and each agent gets
  ``plexum-<pid>/ws-<key>`` with ``pids.max``, ``memory.max`` (``memory.swap.max`` 0) and
  ``cpu.weight``.
* **cgroup v1** (the hybrid layout, as root or with the hierarchies delegated): ``plexum-<pid>/
  ws-<key>`` under the plugin's own cgroup of each of the ``pids``, ``memory`` and ``cpu``
  hierarchies, with ``pids.max``, ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes``,
  so swap is no way around it) and ``cpu.shares``. ``pids`` is required; the others are used
  where they are mounted.
* neither: :func:`open_cgroups` returns ``None`` and the limits are rlimits only.

Under the plugin's own cgroup, never beside it: what the machine's manager counts and bounds for
the plugin still counts and bounds its agents. ``<key>`` is :func:`workspace_key`, which the
helper codex runs for each command (see :mod:`.limits`) computes alike from codex's
``--sandbox-policy-cwd``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["CgroupTree", "CpuMemPids", "open_cgroups", "workspace_key"]

log = logging.getLogger(__name__)

CGROUP_ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("pids", "memory", "cpu")


def workspace_key(workspace: str) -> str:
    """The name of a workspace's cgroup: its real path, hashed (the same in the helper)."""
    real = os.path.realpath(workspace).encode("utf-8", "surrogateescape")
    return "ws-" + hashlib.sha256(real).hexdigest()[:16]


@dataclass(frozen=True)
class CpuMemPids:
    """What an agent's cgroup is given: processes (``pids.max``), bytes of memory, a CPU weight
    (1-10000, 100 being an equal share with the plugin)."""

    processes: int
    memory_bytes: int
    cpu_weight: int


@dataclass
class CgroupTree:
    """The plugin's subtree: ``bases`` are the folders that hold the agents' cgroups (one per v1
    hierarchy, one for v2)."""

    version: Literal[1, 2]
    bases: dict[str, Path]  # controller ("pids", "memory", "cpu"; "unified" on v2) → folder
    limits: CpuMemPids
    controllers: tuple[str, ...]  # those in force
    made: set[str] = field(default_factory=set)

    @property
    def mechanism(self) -> str:
        if self.version == 2:
            return f"cgroup v2, delegated ({', '.join(self.controllers)})"
        return f"cgroup v1 ({', '.join(self.controllers)})"

    def folders(self) -> list[str]:
        return [str(base) for base in dict.fromkeys(self.bases.values())]

    def prepare(self, workspace: str) -> str:
        """Make the workspace's cgroup (once), with the limits written; its key. OSError if the
        cgroup filesystem refuses."""
        key = workspace_key(workspace)
        if key in self.made:
            return key
        for controller, base in self.bases.items():
            folder = base / key
            with contextlib.suppress(FileExistsError):
                folder.mkdir()
            for name, value in self._settings(controller):
                _write(folder / name, value)
        self.made.add(key)
        return key

    def join(self, pid: int, workspace: str) -> None:
        """Move a process (codex exec: before it runs any command) into the workspace's
        cgroup; what it starts later is born there."""
        key = self.prepare(workspace)
        for base in dict.fromkeys(self.bases.values()):
            _write(base / key / "cgroup.procs", str(pid))

    def _settings(self, controller: str) -> list[tuple[str, str]]:
        limits = self.limits
        if self.version == 2:
            out = [
                ("pids.max", str(limits.processes)),
                ("memory.max", str(limits.memory_bytes)),
                ("cpu.weight", str(limits.cpu_weight)),
            ]
            return [*out, ("memory.swap.max", "0")] if "memory" in self.controllers else out
        if controller == "pids":
            return [("pids.max", str(limits.processes))]
        if controller == "memory":
            # The memory limit first: memsw may not be set below it.
            return [
                ("memory.limit_in_bytes", str(limits.memory_bytes)),
                ("memory.memsw.limit_in_bytes", str(limits.memory_bytes)),
            ]
        if controller == "cpu":
            return [("cpu.shares", str(max(2, limits.cpu_weight * 1024 // 100)))]
        return []

    def close(self) -> None:
        """Remove the agents' cgroups and the subtree (those still holding a process stay, and
        are swept by the next start)."""
        for base in dict.fromkeys(self.bases.values()):
            _remove_tree(base)  # on v2 the plugin's own leaf stays while it runs


def _write(path: Path, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except FileNotFoundError:
        # memory.memsw.* exists only with swap accounting; memory.swap.max likewise.
        if path.name not in ("memory.memsw.limit_in_bytes", "memory.swap.max"):
            raise


def _remove_tree(base: Path) -> None:
    with contextlib.suppress(OSError):
        for child in base.iterdir():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
    with contextlib.suppress(OSError):
        base.rmdir()


def _own_paths(proc_cgroup: str) -> dict[str, str]:
    """controller → the plugin's cgroup path ("" for v2's unified hierarchy)."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError), open(proc_cgroup) as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                out[name] = path
    return out


def _v1_mounts(mounts: str) -> dict[str, str]:
    """controller → where its v1 hierarchy is mounted."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError), open(mounts) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4 or parts[2] != "cgroup":
                continue
            for option in parts[3].split(","):
                if option in V1_CONTROLLERS:
                    out.setdefault(option, parts[1])
    return out


def _v2_mount(mounts: str) -> str | None:
    with contextlib.suppress(OSError), open(mounts) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "cgroup2":
                return parts[1]
    return None


def _sweep(parent: Path) -> None:
    """Subtrees that earlier plugin processes left (they were killed, or a process outlived
    them): removed where empty."""
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            name = entry.name
            if not name.startswith("plexum-") or not name[7:].isdigit():
                continue
            if os.path.exists(f"/proc/{name[7:]}") and int(name[7:]) != os.getpid():
                continue
            _remove_tree(entry / "plugin")
            _remove_tree(entry)


def open_cgroups(
    limits: CpuMemPids,
    *,
    proc_cgroup: str = "/proc/self/cgroup",
    mounts: str = "/proc/self/mounts",
    pid: int | None = None,
) -> tuple[CgroupTree | None, str]:
    """The plugin's subtree for its agents, or ``None`` with why (the limits are then rlimits
    only)."""
    pid = os.getpid() if pid is None else pid
    own = _own_paths(proc_cgroup)
    reasons: list[str] = []
    v1 = _v1_mounts(mounts)
    if "pids" in v1 and "pids" in own:
        bases: dict[str, Path] = {}
        for controller in V1_CONTROLLERS:
            if controller not in v1 or controller not in own:
                continue
            parent = Path(v1[controller] + own[controller])
            _sweep(parent)
            base = parent / f"plexum-{pid}"
            try:
                base.mkdir(exist_ok=True)
            except OSError as exc:
                if controller == "pids":
                    reasons.append(f"cgroup v1: cannot make {base}: {exc.strerror}")
                    break
                log.info("limits: no %s cgroup (%s: %s)", controller, base, exc.strerror)
                continue
            bases[controller] = base
        if "pids" in bases:
            return CgroupTree(1, bases, limits, tuple(bases)), ""
        for base in bases.values():
            _remove_tree(base)
    mount = _v2_mount(mounts)
    if mount is not None and "" in own:
        tree, why = _open_v2(Path(mount + own[""]), limits, pid)
        if tree is not None:
            return tree, ""
        reasons.append(why)
    elif not reasons:
        reasons.append("no cgroup hierarchy with a pids controller is mounted")
    return None, "; ".join(reasons)


def _open_v2(own: Path, limits: CpuMemPids, pid: int) -> tuple[CgroupTree | None, str]:
    try:
        available = (own / "cgroup.controllers").read_text().split()
    except OSError as exc:
        return None, f"cgroup v2: cannot read {own}/cgroup.controllers: {exc.strerror}"
    wanted = [c for c in ("pids", "memory", "cpu") if c in available]
    if "pids" not in wanted:
        return None, (
            f"cgroup v2: the plugin's cgroup {own} has no pids controller (run the plugin with"
            " systemd's Delegate=yes)"
        )
    _sweep(own)
    base = own / f"plexum-{pid}"
    leaf = base / "plugin"
    try:
        base.mkdir(exist_ok=True)
        leaf.mkdir(exist_ok=True)
        # The plugin into a leaf first: a cgroup that hands controllers down holds no process.
        _write(leaf / "cgroup.procs", str(pid))
        enable = " ".join(f"+{c}" for c in wanted)
        _write(own / "cgroup.subtree_control", enable)
        _write(base / "cgroup.subtree_control", enable)
    except OSError as exc:
        with contextlib.suppress(OSError):
            _write(own / "cgroup.procs", str(pid))
        _remove_tree(base)
        return None, (
            f"cgroup v2: the plugin's cgroup {own} is not delegated to it ({exc.strerror}: run"
            " the plugin with systemd's Delegate=yes)"
        )
    return CgroupTree(2, {"unified": base}, limits, tuple(wanted)), ""
