"""The agent's codex thread id, kept in ``<workspace>/.plexum-codex-session``.

Written atomically: a temporary file in the same folder, fsynced, renamed over the old one, and the
folder fsynced. A crash at any instant leaves the old id or the new one, never an empty or partial
file, so the next turn resumes the conversation instead of silently starting a new one.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from pathlib import Path

__all__ = [
    "SESSION_FILE",
    "atomic_write",
    "clear_thread_id",
    "is_thread_id",
    "read_thread_id",
    "write_thread_id",
]

SESSION_FILE = ".plexum-codex-session"


def is_thread_id(value: str) -> bool:
    """codex thread ids are UUIDs; ``resume`` with anything else silently starts a new thread."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


def read_thread_id(workspace: Path) -> str | None:
    """The stored id, stripped; ``None`` if there is no file. The content is not validated here."""
    try:
        text = (workspace / SESSION_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    return text.strip()


def write_thread_id(workspace: Path, thread_id: str) -> None:
    atomic_write(workspace / SESSION_FILE, thread_id.encode() + b"\n")
    sweep_stale_temporaries(workspace / SESSION_FILE)


def clear_thread_id(workspace: Path) -> bool:
    """Forget the thread (the next turn starts a new one). True if there was one."""
    try:
        (workspace / SESSION_FILE).unlink()
    except FileNotFoundError:
        return False
    return True


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))  # keep the file's mode
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def sweep_stale_temporaries(path: Path) -> int:
    """Remove temporaries of ``path`` left by writers that were killed mid-write."""
    removed = 0
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
