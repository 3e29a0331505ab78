"""What Linux says of a running process (``/proc``): its memory and its age, for ``status``.

Read distrustfully: a process that ended meanwhile, or a ``/proc`` that is not there, gives None.
"""

from __future__ import annotations

import os

__all__ = ["process_tree_rss", "process_uptime_s"]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(pid).encode():
            out.append(int(entry))
    return out


def _rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return 0  # a zombie has no VmRSS


def process_tree_rss(pid: int) -> int | None:
    """Resident bytes of ``pid`` and every process below it (npm's codex is a node wrapper
    around the native binary: both count)."""
    total = _rss(pid)
    if total is None:
        return None
    seen, todo = {pid}, _children(pid)
    while todo:
        child = todo.pop()
        if child in seen:
            continue
        seen.add(child)
        total += _rss(child) or 0
        todo.extend(_children(child))
    return total


def process_uptime_s(pid: int) -> float | None:
    """Seconds since ``pid`` started."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open("/proc/uptime", "rb") as f:
            booted = float(f.read().split()[0])
        ticks = int(stat[stat.rfind(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None
    return max(booted - ticks / os.sysconf("SC_CLK_TCK"), 0.0)
