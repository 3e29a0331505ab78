"""Nothing codex starts outlives its turn, its app-server, or this process.

codex puts some of its children in sessions of their own, where a signal to codex's process group
does not reach them: the login shell it snapshots the user's environment with (``bash -lc``; with
a slow ``.bashrc`` it outlives a quick turn, one stray per turn), a tool that calls ``setsid``.
And a codex whose plugin was killed with ``kill -9`` goes on running, holding codex's writer lock
of its thread. :class:`ProcessGuard` (one per process) answers both:

* every codex is started with ``PLEXUM_CODEX_OWNER=<token>:<run>`` in its environment, which its
  children inherit (shell tools, the snapshot shell; the MCP relay gets it in its ``env`` table),
  so what a run left is known wherever it went;
* a **watchdog** process (:mod:`.watchdog`, stdlib only, in a session of its own) holds a pipe
  from this process; when the pipe closes, however this process ended, it kills every codex this
  process started and everything marked with its token;
* in the plugin (not when embedded in a host's own process, whose children are the host's
  business), this process is the **child subreaper** (``PR_SET_CHILD_SUBREAPER``): what codex
  orphans is re-parented here instead of to init, and :meth:`sweep` kills what a finished run
  left and reaps it.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from .watchdog import OWNER_ENV

__all__ = ["OWNER_ENV", "ProcessGuard", "descendants", "guard", "kill_thread_processes"]

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _state(pid: int) -> str:
    stat = _read(f"/proc/{pid}/stat")
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[0].decode() if fields else ""


def _owner(pid: int) -> str | None:
    prefix = f"{OWNER_ENV}=".encode()
    for var in _read(f"/proc/{pid}/environ").split(b"\0"):
        if var.startswith(prefix):
            return var[len(prefix) :].decode("utf-8", "replace")
    return None


def _children_map() -> dict[int, list[int]]:
    """parent → children, from every /proc/<pid>/stat."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = _read(f"/proc/{entry}/stat")
                # The command name is in parentheses and may hold spaces: split after the last ')'.
                fields = stat[stat.rfind(b")") + 2 :].split()
                if len(fields) > 1:
                    children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux /proc; empty elsewhere)."""
    children = _children_map()
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def children_of(pid: int) -> list[int]:
    """The children of ``pid``: /proc/<pid>/task/*/children where the kernel has it (one read,
    not a walk of every process), else from the walk."""
    tasks = f"/proc/{pid}/task"
    paths = [f"{tasks}/{t}/children" for t in os.listdir(tasks)] if os.path.isdir(tasks) else []
    if paths and os.path.exists(paths[0]):
        return [int(c) for path in paths for c in _read(path).split()]
    return _children_map().get(pid, [])


def kill_thread_processes(root: int, thread_id: str) -> int:
    """SIGKILL the descendants of ``root`` that codex started for ``thread_id`` (its shell tools
    carry ``CODEX_THREAD_ID``, codex 0.163/0.169); how many."""
    needle = f"CODEX_THREAD_ID={thread_id}".encode()
    killed = 0
    for pid in tree(root)[1:]:
        if needle in _read(f"/proc/{pid}/environ").split(b"\0"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    return killed


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    return [pid, *descendants(pid)]


class ProcessGuard:
    def __init__(self) -> None:
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.spawned: set[int] = set()  # our own children: asyncio waits for them
        self.active: set[str] = set()  # runs whose leftovers must not be swept yet
        self.subreaper = False
        self._runs = itertools.count(1)
        self._watchdog: subprocess.Popen[bytes] | None = None

    def new_run(self, kind: str) -> str:
        run = f"{kind}{next(self._runs)}"
        self.active.add(run)
        return run

    def marker(self, run: str) -> dict[str, str]:
        """The environment entry that marks what ``run`` starts."""
        return {OWNER_ENV: f"{self.token}:{run}"}

    def enable_subreaper(self) -> bool:
        """Become the child subreaper (Linux); True if this process now is one."""
        if self.subreaper:
            return True
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
                self.subreaper = True
        return self.subreaper

    # -- the watchdog ------------------------------------------------------------------------
    def _ensure_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.poll() is None:
            return
        script = Path(__file__).with_name("watchdog.py")
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", str(script), self.token],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # a signal to our process group must not reach it
                close_fds=True,
                env={"PATH": os.defpath},  # nothing of ours: it is not one of codex's processes
            )
        except OSError as exc:
            log.error("cannot start the watchdog: %s", exc)
            self._watchdog = None
            return
        # Not ours to reap by hand: the watchdog outlives us by design.
        self.spawned.add(self._watchdog.pid)

    def _tell(self, line: str) -> None:
        self._ensure_watchdog()
        if self._watchdog is None or self._watchdog.stdin is None:
            return
        try:
            self._watchdog.stdin.write(line.encode() + b"\n")
            self._watchdog.stdin.flush()
        except OSError:
            self._watchdog = None

    def started(self, pid: int) -> None:
        self.spawned.add(pid)
        self._tell(f"+{pid}")

    def ended(self, pid: int, run: str | None = None) -> None:
        """The codex ``pid`` has exited (and been waited for); ``run`` is over."""
        self.spawned.discard(pid)
        self._tell(f"-{pid}")
        if run is not None:
            self.active.discard(run)
            self.sweep()

    # -- the subreaper's sweep ---------------------------------------------------------------
    def sweep(self) -> int:
        """Kill what finished runs left (re-parented here), reap it; returns how many."""
        if not self.subreaper:
            return 0
        killed = 0
        for pid in children_of(os.getpid()):
            if pid in self.spawned:
                continue  # asyncio waits for it
            if _state(pid) == "Z":
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
                continue
            owner = _owner(pid)
            if owner is None or not owner.startswith(self.token + ":"):
                continue  # not started by a codex of ours
            if owner.split(":", 1)[1] in self.active:
                continue  # its run is still going
            for target in reversed(tree(pid)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(target, signal.SIGKILL)
            killed += 1
            log.info("killed pid %d, left running by finished codex run %s", pid, owner)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)  # if not dead yet, the next sweep reaps it
        return killed


_GUARD: ProcessGuard | None = None


def guard() -> ProcessGuard:
    """The guard of this process (one per process: the subreaper and the watchdog are)."""
    global _GUARD
    if _GUARD is None or _GUARD.token.split("-", 1)[0] != str(os.getpid()):
        _GUARD = ProcessGuard()  # a forked child gets a guard of its own
    return _GUARD
