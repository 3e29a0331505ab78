"""codex's own per-thread writer lock, taken the way codex takes it.

While ``codex exec`` runs a thread it holds an exclusive ``flock`` on
``$CODEX_HOME/thread-writer-locks/<thread_id>.lock``, taken while holding ``.coordination.lock``
in the same folder, and removes the file when it is done (codex 0.163/0.169). A second codex on
the thread then fails at once with "already has an active writer". Holding the lock the same way
while the plugin rewrites a rollout makes any codex started meanwhile fail cleanly instead of
appending to a file that is about to be replaced (its records would be lost).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import ThreadBusyError

__all__ = ["is_thread_writer_locked", "thread_writer_lock"]

LOCK_DIR = "thread-writer-locks"
COORDINATION = ".coordination.lock"


@contextlib.contextmanager
def _flocked(path: Path, flags: int) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, flags)
        yield fd
    finally:
        os.close(fd)  # closing releases the flock


@contextlib.contextmanager
def thread_writer_lock(codex_home: Path, thread_id: str, timeout_s: float = 10.0) -> Iterator[None]:
    """Hold codex's writer lock of ``thread_id``; ThreadBusyError if a writer keeps it past
    ``timeout_s``. Blocking: run it in a worker thread from async code."""
    folder = codex_home / LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    lock_path = folder / f"{thread_id}.lock"
    deadline = time.monotonic() + timeout_s
    while True:
        with _flocked(folder / COORDINATION, fcntl.LOCK_EX):
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                fd = -1
        if fd >= 0:
            break
        if time.monotonic() > deadline:
            raise ThreadBusyError(
                f"thread {thread_id} has an active writer (a running codex) after {timeout_s:g} s",
                thread_id=thread_id,
            )
        time.sleep(0.05)
    try:
        yield
    finally:
        with _flocked(folder / COORDINATION, fcntl.LOCK_EX):
            with contextlib.suppress(FileNotFoundError):
                lock_path.unlink()
            os.close(fd)


def is_thread_writer_locked(codex_home: Path, thread_id: str) -> bool:
    """Does some process hold codex's writer lock of ``thread_id`` now? (A probe: the lock is
    taken and given back at once, the way codex takes it, so it never blocks anyone for long.)"""
    folder = codex_home / LOCK_DIR
    lock_path = folder / f"{thread_id}.lock"
    if not lock_path.exists():
        return False
    try:
        with _flocked(folder / COORDINATION, fcntl.LOCK_EX):
            fd = os.open(lock_path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            finally:
                os.close(fd)
    except FileNotFoundError:
        return False
    return False
