"""Whether codex would find project instructions (``AGENTS.md``) for a workspace.

codex reads, before a thread's first request, ``AGENTS.override.md`` or ``AGENTS.md`` in each
folder from the project root (the nearest folder up with a ``.git``) down to the workspace, or in
the workspace alone when there is no root. Confined, it reads them through its sandboxed
filesystem helper: each read starts the helper under bubblewrap, six starts per ``codex exec``
here, which made a plain confined turn 0.37-0.47 s against 0.26-0.29 s unconfined, and an
app-server thread's first turn 281 ms against 88 ms (codex 0.163).
Where there is nothing to find, the plugin tells codex not to look (``project_doc_max_bytes=0``,
which leaves CODEX_HOME's own ``AGENTS.md`` alone): the confined turn then costs what an
unconfined one does. Where the operator tuned the discovery (config.toml or ``extra_args``
naming it), codex looks as configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["NAMES", "SKIP_PROJECT_DOCS_CONFIG", "project_docs_possible"]

NAMES = ("AGENTS.override.md", "AGENTS.md")
ROOT_MARKER = ".git"
SKIP_PROJECT_DOCS_CONFIG = {"project_doc_max_bytes": 0}
# Config keys that change what codex looks for, or where.
_TUNING = ("project_doc", "project_root_markers")


def project_docs_possible(
    workspace: Path, codex_home: Path, extra_args: Sequence[str] = ()
) -> bool:
    """False only when codex would surely find no project instructions for ``workspace``."""
    if any(key in arg for arg in extra_args for key in _TUNING):
        return True
    try:
        config = (codex_home / "config.toml").read_text("utf-8", "replace")
    except OSError:
        config = ""
    if any(key in config for key in _TUNING):
        return True
    root = next((f for f in (workspace, *workspace.parents) if (f / ROOT_MARKER).exists()), None)
    depth = 0 if root is None else len(workspace.parts) - len(root.parts)
    folders = [workspace, *workspace.parents[:depth]]
    return any((folder / name).exists() for folder in folders for name in NAMES)
