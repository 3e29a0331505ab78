"""The agent's codex thread id, kept in ``thread`` in the workspace's records folder
(:mod:`.records`: the plugin's, outside the workspace, where no agent can write).

Written atomically: a temporary file in the same folder, fsynced, renamed over the old one, and the
folder fsynced. A crash at any instant leaves the old id or the new one, never an empty or partial
file, so the next turn resumes the conversation instead of silently starting a new one.

Read distrustfully all the same (the older layout's file, moved in from the workspace, may have
been written by an unconfined agent): a regular file only (never through a symlink, never a FIFO
that would block), at most a few bytes, and its content is never echoed when it is not a thread
id. Before a turn pays for the model, the temporary file that will carry the new id is already
written (:meth:`ThreadRecord.reserve`): a records folder that is read-only or full fails then,
not after.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from .._io.files import (
    NotRegularFile,
    fsync_dir,
    read_small_regular_file,
    sweep_temporaries,
    temporary_path,
)

__all__ = [
    "SESSION_FILE",
    "StoredThread",
    "ThreadRecord",
    "clear_thread_id",
    "is_thread_id",
    "read_thread_id",
    "write_thread_id",
]

SESSION_FILE = "thread"
# A thread id is 36 characters; anything much longer is not one, and is not read further.
_READ_LIMIT = 256
_PLACEHOLDER = b"0" * 36 + b"\n"


def is_thread_id(value: str) -> bool:
    """codex thread ids are UUIDs; ``resume`` with anything else silently starts a new thread."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


@dataclass(frozen=True)
class StoredThread:
    """What the session file holds: a usable ``thread_id``, or a ``problem`` that says (without
    quoting the file) why it cannot be used; both None when there is no file."""

    thread_id: str | None = None
    problem: str | None = None


def load_thread(records: Path) -> StoredThread:
    """What ``records`` (a workspace's records folder) holds of the thread."""
    path = records / SESSION_FILE
    try:
        content = read_small_regular_file(path, _READ_LIMIT)
    except NotRegularFile as exc:
        return StoredThread(problem=f"{path} is {exc.kind}, not a regular file")
    except OSError as exc:
        return StoredThread(problem=f"{path} cannot be read ({exc.strerror or exc})")
    if content is None:
        return StoredThread()
    text = content.data.decode("utf-8", errors="replace").strip()
    if content.truncated or not is_thread_id(text):
        size = "over 256 bytes" if content.truncated else f"{len(content.data)} bytes"
        return StoredThread(problem=f"{path} does not hold a codex thread id ({size})")
    return StoredThread(thread_id=text)


def read_thread_id(records: Path) -> str | None:
    """The stored thread id, or None (no file, or a file that does not hold one)."""
    return load_thread(records).thread_id


class ThreadRecord:
    """One turn's handle on the session file: :meth:`reserve` before codex runs, :meth:`save` when
    codex names the thread, :meth:`release` at the end (whatever happened)."""

    def __init__(self, records: Path) -> None:
        self.path = records / SESSION_FILE
        self._tmp: Path | None = None

    def reserve(self) -> None:
        """Write the temporary that :meth:`save` will fill in; OSError if the records folder
        cannot take it (read-only, full)."""
        sweep_temporaries(self.path.parent, SESSION_FILE)
        tmp = temporary_path(self.path)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            _write_all(fd, _PLACEHOLDER)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.close(fd)
        self._tmp = tmp

    def save(self, thread_id: str) -> None:
        """Atomically make ``thread_id`` the stored one (into the reserved temporary, if any:
        the same number of bytes as the placeholder, so a full disk cannot refuse them now)."""
        data = thread_id.encode() + b"\n"
        tmp, self._tmp = self._tmp, None
        if tmp is None:
            tmp = temporary_path(self.path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                os.ftruncate(fd, len(data))
                os.lseek(fd, 0, os.SEEK_SET)
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(self.path.parent)

    def release(self) -> None:
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_thread_id(records: Path, thread_id: str) -> None:
    ThreadRecord(records).save(thread_id)
    sweep_temporaries(records, SESSION_FILE)


def clear_thread_id(records: Path) -> bool:
    """Forget the thread (the next turn starts a new one). True if there was one."""
    try:
        (records / SESSION_FILE).unlink()
    except FileNotFoundError:
        return False
    return True
