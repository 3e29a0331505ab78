"""Nothing codex starts outlives its run, its app-server, or this process; and nothing is cut
short harder than it must be.

codex puts some of its children in sessions of their own, where a signal to codex's process group
does not reach them: the login shell it snapshots the user's environment with (``bash -lc``; with
a slow ``.bashrc`` it outlives a quick turn, one stray per turn), a tool that calls ``setsid``.
And a codex whose plugin was killed with ``kill -9`` goes on running, holding codex's writer lock
of its thread. :class:`ProcessGuard` (one per process) answers both:

* every codex is started with ``PLEXUM_CODEX_OWNER=<token>:<run>`` in its environment, which its
  children inherit (shell tools, the snapshot shell; the MCP relay gets it in its ``env`` table),
  so what a run left is known wherever it went;
* a **watchdog** process (:mod:`.watchdog`, stdlib only, in a session of its own) holds a pipe
  from this process; when the pipe closes, however this process ended, it ends every codex this
  process started and everything marked with its token;
* in the plugin (not when embedded in a host's own process, whose children are the host's
  business), this process is the **child subreaper** (``PR_SET_CHILD_SUBREAPER``): what codex
  orphans is re-parented here instead of to init, and :meth:`ProcessGuard.sweep` ends what a
  finished run left and reaps it.

Whatever is ended gets SIGTERM, :data:`~.watchdog.TERM_GRACE_S`, then SIGKILL
(:class:`~.watchdog.Ending`): a login shell killed outright leaves pyenv's rehash lock, and every
later login shell of the user waits 60 s for it. What a finished run left in a session of its own
(codex's login-shell snapshot, first of all) is given :data:`LEFTOVER_WAIT_S` to end by itself
first: the snapshot ends in the time the login shell takes. The endings run in the background
(:meth:`ProcessGuard.end`); :meth:`ProcessGuard.settle` waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .watchdog import OWNER_ENV, Ending, ending_steps, process_table, read_bytes, read_proc

__all__ = [
    "LEFTOVER_WAIT_S",
    "OWNER_ENV",
    "Finished",
    "ProcessGuard",
    "descendants",
    "guard",
    "process_group",
    "run_briefly",
    "thread_processes",
]

log = logging.getLogger(__name__)

_PR_SET_CHILD_SUBREAPER = 36
# How long what a finished run left in another session may take to end by itself (codex's
# login-shell snapshot: the time the user's login shell takes; 0.2 s here, pyenv included).
LEFTOVER_WAIT_S = 1.0


def _owner(pid: int) -> str | None:
    prefix = f"{OWNER_ENV}=".encode()
    for var in read_bytes(f"/proc/{pid}/environ").split(b"\0"):
        if var.startswith(prefix):
            return var[len(prefix) :].decode("utf-8", "replace")
    return None


def _has_children_files() -> bool:
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")  # CONFIG_PROC_CHILDREN


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (Linux /proc; empty elsewhere): a walk of ``pid``'s own
    subtree where the kernel lists each task's children, not of every process on the machine
    (which on a shared host made each such look 1.5-5 ms, growing with other users' processes)."""
    return _flatten(_live_tree(pid), pid)


def _live_tree(pid: int) -> dict[int, list[int]]:
    """Each live process of ``pid``'s subtree → its live children."""
    if not _has_children_files():
        children: dict[int, list[int]] = {}
        for entry in process_table().values():
            if not entry.zombie:
                children.setdefault(entry.ppid, []).append(entry.pid)
        return {p: children.get(p, []) for p in [pid, *_flatten(children, pid)]}
    tree: dict[int, list[int]] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        live = []
        for child in dict.fromkeys(_children_of(parent)):  # read one task at a time: once each
            proc = read_proc(child)
            if child not in tree and proc is not None and not proc.zombie:
                live.append(child)
                todo.append(child)
        tree[parent] = live
    return tree


def _flatten(tree: Mapping[int, list[int]], pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _children_of(pid: int) -> list[int]:
    """The children of ``pid``: /proc/<pid>/task/*/children where the kernel has it (one read
    per thread, not a walk of every process), else from the walk."""
    tasks = f"/proc/{pid}/task"
    try:
        paths = [f"{tasks}/{t}/children" for t in os.listdir(tasks)]
    except OSError:
        return []  # gone
    if paths and os.path.exists(paths[0]):
        return [int(c) for path in paths for c in read_bytes(path).split()]
    return [proc.pid for proc in process_table().values() if proc.ppid == pid]


def thread_processes(
    root: int, thread_id: str | None = None, mark: Mapping[str, str] | None = None
) -> list[int]:
    """What codex (``root``) started for ``thread_id`` (for any thread: None): its shell tools
    carry ``CODEX_THREAD_ID`` (codex 0.163-0.171). Among ``root``'s descendants, and, with
    ``mark`` (root's guard marker), wherever they were re-parented: a sandboxed command whose
    parent died mid-start is init's child (seen under load on codex 0.163)."""
    needle = f"CODEX_THREAD_ID={thread_id or ''}".encode()
    owner = [f"{k}={v}".encode() for k, v in (mark or {}).items()]
    elsewhere: set[int] = set()
    if owner and guard().subreaper:
        # What a subreaper's descendants orphan is re-parented to it: one walk of its own subtree
        # (codex's included), not of every process's environment on the machine (read at the end
        # of every app-server turn: 2-5 ms on a shared host, in the event loop).
        tree = _live_tree(os.getpid())
        under = set(_flatten(tree, root)) if root in tree else set(descendants(root))
        elsewhere = set(_flatten(tree, os.getpid()))
    else:
        under = set(descendants(root))
        elsewhere = set(_all_pids()) if owner else set()
    out = []
    for pid in sorted(under | elsewhere):
        environ = read_bytes(f"/proc/{pid}/environ").split(b"\0")
        if pid not in under and not all(o in environ for o in owner):
            continue
        if (needle in environ) if thread_id else any(v.startswith(needle) for v in environ):
            out.append(pid)
    return out


def process_group(pid: int) -> int | None:
    """The process group of ``pid``, or None if it is gone."""
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _all_pids() -> list[int]:
    with contextlib.suppress(OSError):
        return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != os.getpid()]
    return []


@dataclass(frozen=True)
class Finished:
    returncode: int | None  # None: it did not finish in time (and was ended)
    stdout: bytes
    stderr: bytes


async def run_briefly(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> Finished:
    """Run a short helper (``codex --version``, a probe) to its end, bounded: registered with the
    guard (so the subreaper's sweep never takes it for a leftover), in a session of its own, and
    ended gently (SIGTERM, the grace, SIGKILL) if it runs past ``timeout``. OSError if it cannot
    start."""
    keeper = guard()
    with keeper.starting():
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        keeper.spawned.add(proc.pid)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        ending = keeper.end([proc.pid], groups=[proc.pid])
        await proc.wait()
        if ending is not None:
            await ending
        return Finished(None, b"", b"")
    finally:
        if proc.returncode is not None:
            keeper.spawned.discard(proc.pid)
    return Finished(proc.returncode, out, err)


class ProcessGuard:
    def __init__(self) -> None:
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.spawned: set[int] = set()  # our own children: asyncio waits for them
        self.active: set[str] = set()  # runs whose leftovers must not be swept yet
        self.subreaper = False
        self._runs = itertools.count(1)
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._starts: dict[int, int] = {}  # codex pid → its start time (for the watchdog)
        self._ending: set[int] = set()  # pids an ending of ours is ending now
        self._endings: set[asyncio.Task[None]] = set()
        self._starting = 0  # children being started, not yet registered

    @contextlib.contextmanager
    def starting(self) -> Iterator[None]:
        """Around the start of a child of ours, up to its registration (``spawned``)."""
        self._starting += 1
        try:
            yield
        finally:
            self._starting -= 1

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
        proc = read_proc(pid)
        self._starts[pid] = proc.start if proc is not None else 0
        self._tell(f"+{pid} {self._starts[pid]}")

    def ended(
        self, pid: int, run: str | None = None, *, wait_s: float = LEFTOVER_WAIT_S
    ) -> asyncio.Task[None] | None:
        """The codex ``pid`` has exited (and been waited for); ``run`` is over: what it left in
        other sessions is ended, after up to ``wait_s`` to end by itself (re-parented here: the
        sweep; to init, when this process is no subreaper: found by the run's mark). The
        ending's task, or None."""
        self.spawned.discard(pid)
        self._tell(f"-{pid} {self._starts.pop(pid, 0)}")
        if run is None:
            return None
        self.active.discard(run)
        if self.subreaper:
            return self.sweep(wait_s=wait_s)
        return self.end(self.marked(run), wait_s=wait_s)

    def marked(self, run: str) -> list[int]:
        """Live processes marked as started by ``run``."""
        needle = f"{OWNER_ENV}={self.token}:{run}".encode()
        return [p for p in _all_pids() if needle in read_bytes(f"/proc/{p}/environ").split(b"\0")]

    # -- ending ------------------------------------------------------------------------------
    def end(
        self, pids: Iterable[int] = (), *, groups: Iterable[int] = (), wait_s: float = 0.0
    ) -> asyncio.Task[None] | None:
        """End these processes (their descendants and the groups they lead too) in the
        background: up to ``wait_s`` for them to end by themselves, SIGTERM, the grace, SIGKILL.
        Pids an earlier ending still works on are left to it. The task, or None if nothing runs.
        Call it with an event loop running."""
        ending = Ending([p for p in pids if p not in self._ending], groups=groups)
        return self._drive(ending, wait_s=wait_s)

    def end_group(self, pgid: int) -> None:
        """What an exited codex left in its process group: SIGTERM now (one syscall: the common
        case, an empty group, costs nothing more), SIGKILL after the grace if need be."""
        try:
            os.killpg(pgid, signal.SIGTERM)
        except OSError:
            return  # nothing left in it
        self._drive(Ending(groups=[pgid]), wait_s=0.0, terminated=True)

    def _drive(
        self, ending: Ending, *, wait_s: float, terminated: bool = False
    ) -> asyncio.Task[None] | None:
        targets = set(ending.live())
        if not targets:
            return None

        async def run() -> None:
            try:
                for pause in ending_steps(ending, wait_s=wait_s, terminated=terminated):
                    await asyncio.sleep(pause)
            finally:
                self._ending -= targets
                self._reap_orphans()

        self._ending |= targets
        task = asyncio.get_running_loop().create_task(run(), name="ending codex leftovers")
        self._endings.add(task)
        task.add_done_callback(self._endings.discard)
        return task

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait (bounded) for the endings under way; the bound is theirs, this is a backstop."""
        while self._endings:
            done, _ = await asyncio.wait(set(self._endings), timeout=timeout)
            if not done:
                log.warning("%d endings of codex leftovers did not finish", len(self._endings))
                return

    # -- the subreaper's sweep ---------------------------------------------------------------
    def _reap_orphans(self) -> None:
        """Reap the re-parented children that have ended (asyncio waits only for its own)."""
        if not self.subreaper:
            return
        for pid in _children_of(os.getpid()):
            if pid in self.spawned:
                continue
            proc = read_proc(pid)
            if proc is not None and proc.zombie:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)

    def sweep(self, *, wait_s: float = LEFTOVER_WAIT_S) -> asyncio.Task[None] | None:
        """End what finished runs left (re-parented here), gently, in the background; the
        ending's task, or None. Call it with an event loop running."""
        if not self.subreaper:
            return None
        self._reap_orphans()
        found: list[int] = []
        for pid in _children_of(os.getpid()):
            if pid in self.spawned or pid in self._ending:
                continue
            owner = _owner(pid)
            if owner is not None and not owner.startswith(self.token + ":"):
                continue  # another plugin's (a test that runs two in one process)
            if owner is not None and owner.split(":", 1)[1] in self.active:
                continue  # its run is still going
            if owner is None and self._starting:
                # A child of ours being started is not registered yet, and its environment may
                # not show its mark yet: under load, sweeps took codex processes a moment old for
                # unmarked leftovers and ended them (codex exited -15 mid-turn, 7 of 96 turns of
                # 16 agents at once). The next sweep, once no start is under way, takes what this
                # one leaves.
                continue
            # Unmarked: what codex starts with a cleared environment (its sandboxed file helper,
            # bubblewrap) and left when it died; nothing else of ours is unregistered.
            log.info("ending pid %d, left running by codex run %s", pid, owner or "(unmarked)")
            found.append(pid)
        return self.end(found, wait_s=wait_s) if found else None


_GUARD: ProcessGuard | None = None


def guard() -> ProcessGuard:
    """The guard of this process (one per process: the subreaper and the watchdog are)."""
    global _GUARD
    if _GUARD is None or _GUARD.token.split("-", 1)[0] != str(os.getpid()):
        _GUARD = ProcessGuard()  # a forked child gets a guard of its own
    return _GUARD
