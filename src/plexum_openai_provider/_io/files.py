"""Files that must survive crashes, and files that must not be trusted.

* :func:`atomic_write` and :func:`atomic_replace`: a temporary file in the same folder, fsynced,
  renamed over the target, then the folder fsynced. A kill at any instant leaves the old content
  or the new, never a partial file. Temporaries are named ``.<name>.<pid>.<random>.tmp``
  (:func:`temporary_path`), so that :func:`sweep_temporaries` can tell a dead writer's leftover
  from a live writer's work in progress.
* :func:`read_small_regular_file`: reads a file that someone else may have replaced by a symlink,
  a FIFO or something huge, without following, blocking or reading it whole.
  :func:`read_file_without_links` does the same for every folder on the way to it: a path named
  by one party in a folder another party can write (an agent's workspace) is read as the real
  file it names at that instant, never through a link planted in it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "NotRegularFile",
    "SmallFile",
    "atomic_replace",
    "atomic_write",
    "ensure_private_dir",
    "fsync_dir",
    "private_runtime_dir",
    "read_file_without_links",
    "read_small_regular_file",
    "sweep_temporaries",
    "temporary_path",
]


def temporary_path(target: Path) -> Path:
    """Where a writer of ``target`` puts its work in progress (same folder, so rename is atomic)."""
    return target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_replace(
    target: Path, *, mode_from: Path | None = None, durable: bool = True
) -> Iterator[BinaryIO]:
    """Write the new content of ``target`` into the yielded file; on a clean exit it is fsynced
    and renamed over ``target`` (keeping the mode of ``mode_from``, default ``target``); on an
    exception the temporary is removed and ``target`` is untouched. ``durable=False`` skips the
    fsyncs: still all or nothing, but a power cut may take the new content back."""
    tmp = temporary_path(target)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            with contextlib.suppress(FileNotFoundError):
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(mode_from or target).st_mode))
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(target.parent)


def atomic_write(target: Path, data: bytes, *, durable: bool = True) -> None:
    with atomic_replace(target, durable=durable) as f:
        f.write(data)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_temporaries(folder: Path, name: str = "*") -> list[Path]:
    """Remove the temporaries (of the file ``name``, or of every file) in ``folder`` whose writer
    is dead: what a writer killed mid-write left. Returns what was removed."""
    removed: list[Path] = []
    try:
        candidates = list(folder.glob(f".{name}.*.tmp"))
    except OSError:
        return removed
    for tmp in candidates:
        parts = tmp.name[:-4].rsplit(".", 2)  # ".<name>", "<pid>", "<random>"
        if len(parts) != 3 or not parts[1].isdigit() or _alive(int(parts[1])):
            continue
        with contextlib.suppress(OSError):
            tmp.unlink()
            removed.append(tmp)
    return removed


class NotRegularFile(OSError):
    """The path is a symlink, a FIFO, a folder or a device: not a file this package reads."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(errno.EINVAL, f"{path} is {kind}, not a regular file")
        self.kind = kind


@dataclass(frozen=True)
class SmallFile:
    data: bytes
    truncated: bool  # the file is longer than what was read


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_small_regular_file(path: Path, limit: int) -> SmallFile | None:
    """At most ``limit`` bytes of ``path``; ``None`` if it does not exist.

    Never follows a symlink (``O_NOFOLLOW``), never blocks on a FIFO (``O_NONBLOCK``, and nothing
    but a regular file is read): :class:`NotRegularFile` says what it is instead."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW on a symlink
            raise NotRegularFile(path, "a symbolic link") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(path, _kind(info.st_mode))
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    return SmallFile(data[:limit], len(data) > limit)


# Folders are walked by file descriptor, without the right to read them (O_PATH: only to look up).
_DIR_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def read_file_without_links(path: Path, limit: int) -> SmallFile:
    """At most ``limit`` bytes of the regular file ``path`` (absolute, without ``.`` or ``..``),
    opened one component at a time from ``/`` with ``O_NOFOLLOW``: a symlink anywhere on the way
    (the file or any folder above it) is :class:`NotRegularFile`, naming the link; what is read
    is what the lexical path named at that instant, whatever is renamed meanwhile. FileNotFoundError
    if a component does not exist; ValueError for a path that is not absolute and normal."""
    text = str(path)
    parts = text.split("/")
    if not text.startswith("/") or any(p in ("", ".", "..") for p in parts[1:]):
        raise ValueError(f"{text!r} is not an absolute path without '.', '..' or '//'")
    fd = os.open("/", _DIR_FLAGS)
    try:
        walked = ""
        for name in parts[1:-1]:
            walked += "/" + name
            try:
                nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _what_is(fd, name, Path(walked), exc) from None
            os.close(fd)
            fd = nxt
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        try:
            file_fd = os.open(parts[-1], flags, dir_fd=fd)
        except OSError as exc:
            raise _what_is(fd, parts[-1], path, exc) from None
    finally:
        os.close(fd)
    try:
        info = os.fstat(file_fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(path, _kind(info.st_mode))
        if info.st_size > limit:
            return SmallFile(b"", True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(file_fd, min(limit + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(file_fd)
    data = b"".join(chunks)
    return SmallFile(data[:limit], len(data) > limit)


def _what_is(folder_fd: int, name: str, path: Path, exc: OSError) -> OSError:
    """The error for a component that could not be opened: a link says so (O_NOFOLLOW gives
    ELOOP for the last component, ENOTDIR for a folder's), else the error as it is."""
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        try:
            mode = os.lstat(name, dir_fd=folder_fd).st_mode
        except OSError:
            return exc
        if stat.S_ISLNK(mode):
            return NotRegularFile(path, "a symbolic link")
    exc.filename = str(path)
    return exc


def private_runtime_dir(name: str) -> Path:
    """``$XDG_RUNTIME_DIR/<name>`` (when it is short enough for unix sockets under it), else
    ``/tmp/<name>-<uid>``: a place for this user's sockets and locks."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and len(runtime) < 50 and os.path.isdir(runtime):
        return Path(runtime) / name
    return Path(f"/tmp/{name}-{os.getuid()}")


def ensure_private_dir(folder: Path) -> None:
    """Create ``folder`` 0700 (and its parents), or check that the existing one is a real folder
    of ours (not a link another user planted in /tmp) and make it 0700. PermissionError if not."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(folder, 0o700)
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise PermissionError(f"{folder} is not a folder (a link or a file): refusing to use it")
    if info.st_uid != os.getuid():
        raise PermissionError(
            f"{folder} belongs to uid {info.st_uid}, not to us: refusing to use it"
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(folder, 0o700)
