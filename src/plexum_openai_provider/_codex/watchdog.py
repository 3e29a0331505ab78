"""The watchdog: what ends every codex a process started when that process dies, even by kill -9.

Run as a lone file (``python -I -S watchdog.py TOKEN``: standard library only, fast to start) by
:class:`~.guard.ProcessGuard`, in a session of its own (a signal to the owner's process group
does not reach it), with a pipe from its owner on stdin. The owner writes ``+PID`` when it starts
a codex and ``-PID`` when that codex has ended. When the pipe reaches EOF (the owner exited or
was killed), it kills, with SIGKILL:

* each registered PID's process group and every descendant of the PID;
* every process whose environment holds ``PLEXUM_CODEX_OWNER=TOKEN:…`` (codex, its shell tools,
  the MCP relay: whatever codex started, in whatever session it put itself);

until none is left (bounded), then exits. A codex that outlived its plugin would hold codex's
writer lock of its thread and lock the agent out of the next plugin (8.9 s measured, unbounded
with a hanging model).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

OWNER_ENV = "PLEXUM_CODEX_OWNER"


def _each(name: str) -> list[tuple[int, bytes]]:
    """(pid, the content of /proc/<pid>/<name>) of every process that can be read."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/{name}", "rb") as f:
                    out.append((int(entry), f.read()))
            except OSError:
                continue
    return out


def _processes() -> tuple[dict[int, list[int]], set[int]]:
    """(parent → children, the live ones: not zombies)."""
    children: dict[int, list[int]] = {}
    live: set[int] = set()
    for pid, stat in _each("stat"):
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(pid)
            if fields[0] != b"Z":
                live.add(pid)
    return children, live


def marked(token: str) -> list[int]:
    """Live processes whose environment says this owner started them."""
    needle = f"{OWNER_ENV}={token}:".encode()
    return [
        pid
        for pid, environ in _each("environ")
        if pid != os.getpid() and any(v.startswith(needle) for v in environ.split(b"\0"))
    ]


def kill_all(token: str, roots: set[int]) -> int:
    """One pass: SIGKILL to the roots' groups and trees and to every marked process."""
    children, live = _processes()
    targets = set(marked(token))
    todo = list(roots)
    while todo:
        pid = todo.pop()
        targets.add(pid)
        todo.extend(children.get(pid, []))
    for root in roots:
        with contextlib.suppress(OSError):
            os.killpg(root, signal.SIGKILL)
    killed = 0
    for pid in targets & live:
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except OSError:
            pass
    return killed


def main() -> int:
    token = sys.argv[1]
    roots: set[int] = set()
    for raw in sys.stdin.buffer:
        line = raw.strip()
        if line.startswith(b"+") and line[1:].isdigit():
            roots.add(int(line[1:]))
        elif line.startswith(b"-") and line[1:].isdigit():
            roots.discard(int(line[1:]))
    # EOF: the owner is gone. Kill until nothing is left (a dying tree may still fork).
    deadline = time.monotonic() + 5.0
    while kill_all(token, roots) and time.monotonic() < deadline:
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the terminal is not for us
    raise SystemExit(main())
