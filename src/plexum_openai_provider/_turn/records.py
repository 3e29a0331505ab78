"""Where the plugin keeps what it records of a workspace: out of the agent's reach.

The thread id (:mod:`.thread_store`), what the thread was given (:mod:`.delivery`) and which agent
the workspace belongs to (:mod:`.workspace`) are the plugin's word on the workspace. In the
workspace itself the agent could rewrite them, or, confined, rename a file of its own over the
plugin's temporary while the plugin writes one (the plugin's rename then puts the agent's file in
place). So they live in a folder of the plugin's, one per workspace::

    <state dir>/workspaces/<key>/   0700; key: the first 32 hex digits of the SHA-256 of the
                                    workspace's real path
        workspace                   that real path (for people; and checked: a folder serves
                                    only the workspace it names)
        thread  delivered  agent    the records (each written atomically by its module)

The state folder (:func:`default_state_dir`) is ``PLEXUM_STATE_DIR``, else
``$XDG_STATE_HOME/plexum-openai-provider``, else ``~/.local/state/plexum-openai-provider``: a
folder that outlives a reboot, unlike the lock folder (``$XDG_RUNTIME_DIR`` is a tmpfs removed at
logout, ``/tmp`` is cleared at boot), since a lost thread id is a lost conversation. Every
plugin of the user uses the same one, so that each sees the others' claims; no confined agent
sees it (the provider names it among the folders no sandbox may expose; with ``sandbox: "none"``
an agent can write everything of the user's, this folder as ``CODEX_HOME``).

A workspace that has records of the older layout (``<workspace>/.plexum-codex-session``,
``.plexum-codex-delivered``, ``.plexum-codex-agent``) has them moved here when its folder is made
(:func:`open_records`, under the workspace's lock): read distrustfully as before, written here,
then removed from the workspace. Once the folder exists, files of those names in the workspace
are nothing to the plugin.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from .._io.files import (
    NotRegularFile,
    atomic_write,
    ensure_private_dir,
    read_small_regular_file,
    sweep_temporaries,
)

__all__ = [
    "LEGACY_FILES",
    "STATE_DIR_ENV",
    "WORKSPACE_FILE",
    "default_state_dir",
    "open_records",
    "records_dir",
]

STATE_DIR_ENV = "PLEXUM_STATE_DIR"
WORKSPACE_FILE = "workspace"
# The older layout's files in the workspace → their names in the records folder (kept in step
# with thread_store.SESSION_FILE, delivery.DELIVERY_FILE and workspace.OWNER_FILE).
LEGACY_FILES = {
    ".plexum-codex-session": "thread",
    ".plexum-codex-delivered": "delivered",
    ".plexum-codex-agent": "agent",
}
_LEGACY_LIMIT = 64 * 1024  # the largest record (a delivery record) is bounded by this


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    override = env.get(STATE_DIR_ENV)
    if override:
        return Path(override)
    state = env.get("XDG_STATE_HOME")
    if state and os.path.isabs(state):
        return Path(state) / "plexum-openai-provider"
    home = env.get("HOME")
    base = Path(home) if home else Path.home()
    return base / ".local" / "state" / "plexum-openai-provider"


def records_dir(state_dir: Path, workspace: Path) -> Path:
    """The records folder of ``workspace`` (whether or not it exists yet)."""
    real = os.path.realpath(workspace)
    key = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return state_dir / "workspaces" / key


def open_records(state_dir: Path, workspace: Path) -> Path:
    """The records folder of ``workspace``, made (with the older layout's records moved in) if
    it is not there yet. OSError if the state folder cannot be used; call it holding the
    workspace's lock (two plugins must not move the same records at once)."""
    ensure_private_dir(state_dir)
    ensure_private_dir(state_dir / "workspaces")
    folder = records_dir(state_dir, workspace)
    real = os.path.realpath(workspace)
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        ensure_private_dir(folder)
        named = _named_workspace(folder)
        if named == real:
            sweep_temporaries(folder)  # what a writer killed mid-write left (its pid is gone)
            return folder
        if named is not None:  # a SHA-256 prefix shared by two paths: never seen, never used
            raise OSError(f"{folder} holds the records of {named!r}, not of {real!r}") from None
        # Made, but killed before the move was done: the move is done again below.
    _adopt_legacy(Path(real), folder)
    # Written last: a folder that names its workspace has had the older records moved in.
    atomic_write(folder / WORKSPACE_FILE, real.encode("utf-8", "surrogateescape") + b"\n")
    for name in LEGACY_FILES:
        with contextlib.suppress(OSError):
            os.unlink(Path(real) / name)
        sweep_temporaries(Path(real), name)
    return folder


def _named_workspace(folder: Path) -> str | None:
    try:
        content = read_small_regular_file(folder / WORKSPACE_FILE, 8192)
    except OSError:
        return None
    if content is None or content.truncated:
        return None
    return content.data.decode("utf-8", "surrogateescape").rstrip("\n") or None


def _adopt_legacy(workspace: Path, folder: Path) -> None:
    """Copy the older layout's records into ``folder`` as they are (each module reads its own
    distrustfully: anything malformed is no record); what cannot be read is left behind."""
    for old, new in LEGACY_FILES.items():
        try:
            content = read_small_regular_file(workspace / old, _LEGACY_LIMIT)
        except (NotRegularFile, OSError):
            continue
        if content is None or content.truncated:
            continue
        atomic_write(folder / new, content.data)
