"""Ending processes gently, and the watchdog that ends what a dead process's codex left.

**Ending.** Whatever this package ends is given SIGTERM first, a short grace, and SIGKILL only
if it is still there (:class:`Ending`, driven by :func:`ending_steps`). codex runs the user's
login shell (its environment snapshot, and shell commands); with pyenv that shell runs ``pyenv
rehash``, which takes a lock file with noclobber and removes it in an EXIT trap. A shell ended by
SIGKILL never runs its trap: the lock stays, and every later login shell of the user waits 60 s
for it (measured on these machines: ``bash -lc true`` took 60.3 s, 0.2 s once the file was
removed). A shell given SIGTERM runs its trap: the lock went 3 ms after a SIGTERM to its group,
12 ms after one to the shell alone (bash 5.2), so :data:`TERM_GRACE_S` is 40 times what a trap
needed. A process is named by its pid and its start time, so a pid the kernel reused is never
signalled; processes are followed through their process groups and children, so what a dying
shell forked is ended too.

**The watchdog.** Run as a lone file (``python -I -S watchdog.py TOKEN``: standard library only,
fast to start) by :class:`~.guard.ProcessGuard`, in a session of its own (a signal to the owner's
process group does not reach it), with a pipe from its owner on stdin. The owner writes ``+PID
START`` when it starts a codex and ``-PID START`` when that codex has ended (START: the process's
start time, so that a reused pid is never taken for it). When the pipe reaches EOF (the
owner exited or was killed), it ends, as above:

* each registered codex, its process group and every descendant;
* every process whose environment holds ``PLEXUM_CODEX_OWNER=TOKEN:…`` (codex, its shell tools,
  the MCP relay: whatever codex started, in whatever session it put itself);

then exits. A codex that outlived its plugin would hold codex's writer lock of its thread and
lock the agent out of the next plugin (8.9 s measured, unbounded with a hanging model).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "KILL_BOUND_S",
    "OWNER_ENV",
    "POLL_S",
    "TERM_GRACE_S",
    "Ending",
    "Proc",
    "end_now",
    "ending_steps",
    "marked",
    "process_table",
    "read_bytes",
    "read_proc",
]

OWNER_ENV = "PLEXUM_CODEX_OWNER"
# After SIGTERM, how long a process may take to end before SIGKILL (a trap needed 3-12 ms).
TERM_GRACE_S = 0.5
# After SIGKILL, how long to keep ending what a dying tree still forks.
KILL_BOUND_S = 2.0
POLL_S = 0.02


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    zombie: bool
    start: int  # clock ticks after boot: with the pid, what names one process


def _proc(pid: int, stat: bytes) -> Proc | None:
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20:
        return None
    return Proc(pid, int(fields[1]), int(fields[2]), fields[0] == b"Z", int(fields[19]))


def read_bytes(path: str) -> bytes:
    """A whole (small, /proc) file; empty if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def read_proc(pid: int) -> Proc | None:
    """One process, or None if it is gone."""
    return _proc(pid, read_bytes(f"/proc/{pid}/stat"))


def process_table() -> dict[int, Proc]:
    """Every process, from one walk of /proc (Linux)."""
    out: dict[int, Proc] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                proc = read_proc(int(entry))
                if proc is not None:
                    out[proc.pid] = proc
    return out


def marked(token: str) -> list[int]:
    """Live processes whose environment says this owner started them."""
    needle = f"{OWNER_ENV}={token}:".encode()
    out = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid():
                environ = read_bytes(f"/proc/{entry}/environ")
                if any(v.startswith(needle) for v in environ.split(b"\0")):
                    out.append(int(entry))
    return out


class Ending:
    """Processes to end: the given pids, their descendants, and the members of the process
    groups they lead (a shell's children stay in its group when the shell dies first). Never
    this process or its group."""

    def __init__(
        self,
        pids: Iterable[int] = (),
        groups: Iterable[int] = (),
        starts: Mapping[int, int] | None = None,
    ) -> None:
        """``starts``: the start times some pids must still have (pids noted earlier: one the
        kernel gave to another process since is left alone)."""
        self._own = {os.getpid(), os.getpgrp()}
        self._known: dict[int, int] = {}  # pid → start time
        self._groups: set[int] = {g for g in groups if g not in self._own}
        table = process_table()
        for pid in pids:
            proc = table.get(pid)
            if proc is None or pid in self._own:
                continue
            if starts is not None and starts.get(pid, proc.start) != proc.start:
                continue
            self._known[pid] = proc.start
        self._follow(table)

    def _follow(self, table: dict[int, Proc]) -> dict[int, Proc]:
        """Take in the children and group members of what is known (they may have forked);
        return the live known processes."""
        grew = True
        while grew:
            grew = False
            for proc in table.values():
                if self._is_known(proc) or proc.pid in self._own:
                    continue
                if proc.pgid in self._groups or self._is_known(table.get(proc.ppid)):
                    self._known[proc.pid] = proc.start
                    grew = True
        for pid in self._known:
            leader = table.get(pid)
            if leader is not None and leader.pgid == pid and pid not in self._own:
                self._groups.add(pid)  # a group leader: its group is ended with it
        return {
            pid: proc for pid, proc in table.items() if self._is_known(proc) and not proc.zombie
        }

    def _is_known(self, proc: Proc | None) -> bool:
        return proc is not None and self._known.get(proc.pid) == proc.start

    def live(self) -> list[int]:
        """The processes of this ending that still run (zombies have ended)."""
        return sorted(self._follow(process_table()))

    def send(self, sig: signal.Signals) -> int:
        """``sig`` once to every live process of this ending: to the groups it ends that have a
        live member (one with none is never signalled: its id may be reused), and to each
        process outside them. Never twice: a second SIGTERM during a shell's EXIT trap ends the
        shell before the trap is done. How many processes."""
        alive = self._follow(process_table())
        groups = {proc.pgid for proc in alive.values()} & self._groups
        for group in groups:
            with contextlib.suppress(OSError):
                os.killpg(group, sig)
        for pid, proc in alive.items():
            if proc.pgid not in groups:
                with contextlib.suppress(OSError):
                    os.kill(pid, sig)
        return len(alive)


def ending_steps(
    ending: Ending,
    *,
    wait_s: float = 0.0,
    grace_s: float = TERM_GRACE_S,
    kill_bound_s: float = KILL_BOUND_S,
    terminated: bool = False,
) -> Iterator[float]:
    """The steps of one bounded end, as pauses for the driver to sleep (``time.sleep`` or
    ``asyncio.sleep``): up to ``wait_s`` for the processes to end by themselves, then SIGTERM
    (unless the caller sent it: ``terminated``; a second one could cut a trap short) and up to
    ``grace_s``, then SIGKILL until nothing is left (at most ``kill_bound_s``)."""
    for sig, bound in ((None, wait_s), (signal.SIGTERM, grace_s), (signal.SIGKILL, kill_bound_s)):
        if not ending.live():
            return
        deadline = time.monotonic() + bound
        if sig is signal.SIGKILL or (sig is signal.SIGTERM and not terminated):
            ending.send(sig)
        while ending.live() and time.monotonic() < deadline:
            yield POLL_S
            if sig is signal.SIGKILL:
                ending.send(sig)  # what the dying tree forked meanwhile


def end_now(ending: Ending) -> None:
    """Drive :func:`ending_steps` to its end, blocking."""
    for pause in ending_steps(ending):
        time.sleep(pause)


def main() -> int:
    token = sys.argv[1]
    roots: dict[int, int] = {}  # codex pid → its start time
    for raw in sys.stdin.buffer:
        words = raw.split()
        if len(words) == 2 and words[0][1:].isdigit() and words[1].isdigit():
            if words[0].startswith(b"+"):
                roots[int(words[0][1:])] = int(words[1])
            elif words[0].startswith(b"-"):
                roots.pop(int(words[0][1:]), None)
    # EOF: the owner is gone. End the codex processes it registered and everything marked as
    # started by it; then again, for what a dying codex started meanwhile.
    for _ in range(3):
        ending = Ending([*roots, *marked(token)], starts=roots)
        if not ending.live():
            break
        end_now(ending)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the terminal is not for us
    raise SystemExit(main())
