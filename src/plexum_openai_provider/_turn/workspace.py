"""Who may run an agent's turn in a workspace, across plugin processes, and what must hold first.

The workspace's records (thread id, delivery, owner) are kept per workspace in a folder of the
plugin's (:mod:`.records`), so the workspace is what is locked:

* **One plugin at a time.** While a turn (or a consume) works in a workspace, its plugin process
  holds an exclusive ``flock`` on a lock file kept per workspace (by its device and inode, so that
  two paths to one folder are one workspace) in a 0700 folder of the plugin's user
  (:class:`WorkspaceLocks`; within the process, the agent's asyncio lock orders turns and
  consumes). A second plugin process that finds it held gets :class:`AgentBusyError` at once,
  naming the holder's pid. The lock goes with its holder: a plugin killed with ``kill -9``
  releases it instantly.
* **One agent per workspace.** The first agent that runs in a workspace is recorded in ``agent``
  in its records folder; another agent id is refused (two agents sharing one thread record would
  resume each other's conversation). Removing that file hands the workspace over.
* **codex's own writer lock is free**, unless this plugin's own engine holds the thread (the
  app-server keeps a loaded thread's lock): otherwise another codex (a second plugin's app-server,
  or a codex started by hand) is writing it, and this turn would fail "active writer" after
  paying for nothing.
* **The records folder and CODEX_HOME can be written**: the thread id's temporary is written
  before codex runs (:meth:`~.thread_store.ThreadRecord.reserve`).
* **A confined agent's workspace reaches nothing of another's** (:class:`WorkspaceGuard`, checked
  before the records are opened, so a refused workspace changes nothing and no older-layout
  records are adopted from it). Its path has no symbolic link in it: records are kept by real
  path, so a workspace swapped for a link (by an agent whose workspace holds it) would start a
  thread in the link's target, writable. It is not, does not hold and does not lie in another
  agent's workspace (known from the state folder's records, so across plugin processes, and
  from this process's claims): the outer agent could read and write the inner one's files, and
  plant a ``.codex/config.toml`` there. It is not, does not hold and does not lie in a folder
  no agent may see (CODEX_HOME, the plugin's state, socket and lock folders) or a credential
  path. And it has no ``.codex/config.toml``: codex 0.163 loads a workspace's own when a thread
  starts, even with the project's ``trust_level = "untrusted"``, and runs its ``mcp_servers``
  and ``notify`` outside the sandbox and the agent's limits (checked on every confined turn, a
  resumed thread's too; ``.codex/hooks.json`` as well, as a precaution). Only the workspace's
  own counts: codex reads the ``.codex`` folders from the project root (the nearest folder up
  with a ``.git``, codex's default ``project_root_markers``) down to the workspace, and the
  plugin keeps a ``.git`` in a confined agent's workspace. The real path's device and inode are kept from
  the agent's first claim in this process: a later claim that finds another folder there is
  checked again in full.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from .._codex.readable import within
from .._codex.writer_lock import is_thread_writer_locked
from .._io.files import (
    NotRegularFile,
    atomic_write,
    ensure_private_dir,
    private_runtime_dir,
    read_small_regular_file,
)
from ..errors import AgentBusyError, CodexHomeError, InvalidRequestError
from .delivery import Delivery, load_delivery
from .records import WORKSPACE_FILE, open_records
from .thread_store import StoredThread, ThreadRecord, load_thread

__all__ = [
    "OWNER_FILE",
    "WorkspaceClaim",
    "WorkspaceGuard",
    "WorkspaceLocks",
    "claim_workspace",
    "default_lock_dir",
    "lock_workspace",
]

OWNER_FILE = "agent"  # in the workspace's records folder
LOCK_DIR_ENV = "PLEXUM_LOCK_DIR"


def default_lock_dir() -> Path:
    override = os.environ.get(LOCK_DIR_ENV)
    return Path(override) if override else private_runtime_dir("plexum-openai-provider") / "locks"


class WorkspaceLocks:
    """This process's cross-process workspace locks, each held once however many users it has
    here (a turn and a consume of one agent are ordered by the agent's asyncio lock)."""

    def __init__(self, lock_dir: Path) -> None:
        self.lock_dir = lock_dir
        self._held: dict[str, tuple[int, int]] = {}  # key → (fd, users)
        self._mutex = threading.Lock()  # acquire/release run in worker threads

    def acquire(self, agent_id: str, workspace: Path) -> str:
        """The lock's key; AgentBusyError if another process holds it."""
        info = os.stat(workspace)
        key = hashlib.sha256(f"{info.st_dev}:{info.st_ino}".encode()).hexdigest()[:24]
        with self._mutex:
            held = self._held.get(key)
            if held is not None:
                self._held[key] = (held[0], held[1] + 1)
                return key
            self._held[key] = (self._flock(key, agent_id), 1)
        return key

    def release(self, key: str) -> None:
        with self._mutex:
            fd, users = self._held.pop(key, (-1, 0))
            if users > 1:
                self._held[key] = (fd, users - 1)
            elif fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)  # closing releases the flock

    def _flock(self, key: str, agent_id: str) -> int:
        try:
            ensure_private_dir(self.lock_dir)
        except OSError as exc:
            raise CodexHomeError(
                f"the lock folder cannot be used: {exc}", path=str(self.lock_dir)
            ) from None
        fd = os.open(self.lock_dir / f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 256, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise AgentBusyError(agent_id, holder=holder) from None
        except BaseException:
            os.close(fd)
            raise
        note = f"plugin process {os.getpid()} (agent {agent_id!r})".encode("utf-8", "replace")
        try:
            # Written only when it changes: truncating a file waits for the filesystem's
            # journal (0.7 ms a turn here), and a process takes the same lock turn after turn.
            if os.pread(fd, len(note) + 1, 0) != note:
                os.ftruncate(fd, 0)
                os.pwrite(fd, note, 0)
        except BaseException:
            os.close(fd)
            raise
        return fd


# What codex reads from a workspace and runs programs of, outside the sandbox (see the module
# docstring); hooks.json is refused as a precaution (codex's hooks read it from a config folder).
PROJECT_CONFIG = (".codex/config.toml", ".codex/hooks.json")


def _refuse(workspace: Path, why: str) -> InvalidRequestError:
    return InvalidRequestError(f"agent.workspace {str(workspace)!r} {why}", field="agent.workspace")


class WorkspaceGuard:
    """What a confined agent's workspace may not be (see the module docstring); one per
    provider. ``never``: folders no agent may see and credential paths. The full check runs on
    an agent's first claim of a workspace in this process (and when another folder is found at
    its path); later claims cost a ``realpath`` and a ``stat``."""

    def __init__(self, state_dir: Path, never: Iterable[str]) -> None:
        self.state_dir = state_dir
        self.never = tuple(os.path.realpath(p) for p in never)
        self._pins: dict[tuple[str, str], tuple[int, int]] = {}  # (agent, path) → (dev, ino)
        # The state folder's records: (its folder's mtime and links, {records folder: path}).
        self._known: tuple[tuple[int, int], dict[str, str]] = ((-1, -1), {})
        self._mutex = threading.Lock()  # claims run in worker threads

    def check(
        self, agent_id: str, workspace: Path, others: Iterable[str] = (), *, runs: bool = True
    ) -> None:
        """InvalidRequestError (``agent.workspace``) if the workspace is refused. ``others``:
        other agents' workspaces this process knows of; ``runs``: codex will run there (a
        consume runs nothing: a project config is no matter)."""
        path = os.path.normpath(workspace)
        real = os.path.realpath(path)
        if real != path:
            raise _refuse(
                workspace,
                f"has a symbolic link in it (it is {real!r}); a confined agent's workspace is"
                " given by its real path",
            )
        try:
            info = os.stat(real)
        except OSError as exc:
            raise _refuse(workspace, f"cannot be used: {exc.strerror or exc}") from None
        found = [name for name in PROJECT_CONFIG if runs and os.path.lexists(f"{real}/{name}")]
        if found:
            raise _refuse(
                workspace,
                f"has a {found[0]}: codex loads it when a thread starts and runs the programs it"
                " names (mcp_servers, notify, hooks) outside the sandbox; remove it to run a"
                " confined agent here",
            )
        pin = (info.st_dev, info.st_ino)
        with self._mutex:
            if self._pins.get((agent_id, real)) == pin:
                return
        self._check_place(agent_id, workspace, real, others)
        with self._mutex:
            self._pins[(agent_id, real)] = pin

    def _check_place(
        self, agent_id: str, workspace: Path, real: str, others: Iterable[str]
    ) -> None:
        guarded = next((g for g in self.never if within(g, real) or within(real, g)), None)
        if guarded is not None:
            raise _refuse(
                workspace,
                f"is, holds or lies in {guarded!r}, which no agent may see (codex's home, the"
                " plugin's folders, credentials)",
            )
        for other in others:
            other = os.path.realpath(other)
            if other != real and (within(other, real) or within(real, other)):
                raise _refuse(workspace, _nested(other, "another agent of this plugin"))
        for folder, other in self._known_workspaces().items():
            if other == real or not (within(other, real) or within(real, other)):
                continue
            owner = _owner_of(Path(folder))
            if owner and owner != agent_id and os.path.isdir(other):
                raise _refuse(
                    workspace,
                    _nested(
                        other,
                        f"agent {owner!r} (recorded in {folder}: remove that folder to forget it)",
                    ),
                )

    def _known_workspaces(self) -> dict[str, str]:
        """Every workspace the state folder has records of: records folder → real path (read
        again only when a records folder was made or removed since: the link count tells one
        made within the mtime's tick)."""
        folder = self.state_dir / "workspaces"
        try:
            info = os.stat(folder)
        except OSError:
            return {}
        stamp = (info.st_mtime_ns, info.st_nlink)
        with self._mutex:
            if self._known[0] == stamp:
                return self._known[1]
        known: dict[str, str] = {}
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                named = _read_line(Path(entry.path) / WORKSPACE_FILE)
                if named:
                    known[entry.path] = named
        with self._mutex:
            self._known = (stamp, known)
        return known


def _nested(other: str, whose: str) -> str:
    return (
        f"holds or lies in {other!r}, the workspace of {whose}; a confined agent's workspace"
        " may not hold another's (its agent could read and write it, and plant files codex runs)"
    )


def _read_line(path: Path) -> str | None:
    try:
        content = read_small_regular_file(path, 8192)
    except (NotRegularFile, OSError):
        return None
    if content is None or content.truncated:
        return None
    return content.data.decode("utf-8", "surrogateescape").strip() or None


def _owner_of(records: Path) -> str | None:
    return _read_line(records / OWNER_FILE)


@dataclass
class WorkspaceClaim:
    """Held while a turn or consume works in the workspace; :meth:`release` exactly once."""

    locks: WorkspaceLocks
    key: str
    records: Path  # the workspace's records folder (see .records)
    stored: StoredThread
    record: ThreadRecord
    delivery: Delivery | None = None  # what the stored thread was given (see .delivery)
    _released: bool = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.record.release()
            self.locks.release(self.key)


def _check_owner(records: Path, workspace: Path, agent_id: str, *, claim: bool = True) -> None:
    """InvalidRequestError if the workspace is another agent's; else (``claim``) it is this
    agent's from now on."""
    path = records / OWNER_FILE
    try:
        content = read_small_regular_file(path, 4096)
    except (NotRegularFile, OSError):
        content = None  # unusable: claimed again below
    if content is not None and not content.truncated:
        owner = content.data.decode("utf-8", "replace").strip()
        if owner == agent_id:
            return
        if owner:
            raise InvalidRequestError(
                f"agent.workspace {str(workspace)!r} is the workspace of agent {owner!r} (see"
                f" {path}); each agent needs a workspace of its own. To hand it over, remove"
                " that file",
                field="agent.workspace",
            )
    if not claim:
        return
    # Not fsynced: a claim lost to a power cut is only made again by the next turn.
    atomic_write(path, agent_id.encode("utf-8") + b"\n", durable=False)


def _check_codex_home(codex_home: Path) -> None:
    folder = codex_home if codex_home.exists() else codex_home.parent
    for path in (folder, codex_home / "sessions"):
        if path.exists() and not os.access(path, os.W_OK | os.X_OK):
            raise CodexHomeError(
                f"CODEX_HOME {codex_home}: {path} cannot be written by this user; codex could"
                " not record the turn, so it was not started",
                path=str(path),
            )


def _open_records(state_dir: Path, workspace: Path) -> Path:
    try:
        return open_records(state_dir, workspace)
    except OSError as exc:
        raise CodexHomeError(
            f"the plugin's state folder cannot be used for agent.workspace {str(workspace)!r}:"
            f" {exc.strerror or exc}",
            path=str(state_dir),
        ) from None


def claim_workspace(
    locks: WorkspaceLocks,
    agent_id: str,
    workspace: Path,
    *,
    state_dir: Path,
    codex_home: Path,
    engine_holds: Callable[[str], bool],
    owner_known: bool = False,
    guard: WorkspaceGuard | None = None,
    others: Iterable[str] = (),
) -> WorkspaceClaim:
    """Everything that must hold before a turn runs (blocking I/O: call it in a worker thread).
    Raises AgentBusyError, InvalidRequestError or CodexHomeError, holding nothing then.

    ``state_dir``: where the workspace's records folder is (see .records). ``owner_known``: this
    process already checked (and recorded) that the workspace is this agent's. The thread id's
    temporary is reserved only when a new thread will be started (no usable stored id): a
    resumed thread needs no write unless codex replaces it, and that rare failure is then a
    notice, not a lost turn. ``guard`` (confined agents): checked first, with ``others``, the
    other agents' workspaces this process knows of."""
    if guard is not None:
        guard.check(agent_id, workspace, others)
    key = locks.acquire(agent_id, workspace)
    record: ThreadRecord | None = None
    try:
        records = _open_records(state_dir, workspace)
        record = ThreadRecord(records)
        stored = load_thread(records)
        try:
            if not owner_known:
                _check_owner(records, workspace, agent_id)
            if stored.thread_id is None:
                record.reserve()
        except OSError as exc:
            raise CodexHomeError(
                f"the records of agent.workspace {str(workspace)!r} cannot be written in"
                f" {records}: {exc.strerror or exc}",
                path=str(records),
            ) from None
        _check_codex_home(codex_home)
        thread = stored.thread_id
        if thread and not engine_holds(thread) and is_thread_writer_locked(codex_home, thread):
            raise AgentBusyError(
                agent_id, holder=f"another codex process, which is writing thread {thread}"
            )
    except BaseException:
        if record is not None:
            record.release()
        locks.release(key)
        raise
    return WorkspaceClaim(locks, key, records, stored, record, load_delivery(records))


def lock_workspace(
    locks: WorkspaceLocks,
    agent_id: str,
    workspace: Path,
    *,
    state_dir: Path,
    guard: WorkspaceGuard | None = None,
    others: Iterable[str] = (),
) -> WorkspaceClaim:
    """The cross-process lock and the owner rule (for a consume, which claims nothing):
    AgentBusyError if another process has the lock, InvalidRequestError if the workspace is
    another agent's or ``guard`` refuses it (records of a refused workspace are not opened)."""
    if guard is not None:
        guard.check(agent_id, workspace, others, runs=False)
    key = locks.acquire(agent_id, workspace)
    try:
        records = _open_records(state_dir, workspace)
        _check_owner(records, workspace, agent_id, claim=False)
        return WorkspaceClaim(locks, key, records, load_thread(records), ThreadRecord(records))
    except BaseException:
        locks.release(key)
        raise
