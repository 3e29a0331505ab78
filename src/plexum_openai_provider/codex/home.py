"""Where codex keeps its state: ``$CODEX_HOME``, else ``~/.codex``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["codex_home"]


def codex_home(env: dict[str, str] | None = None) -> Path:
    env = os.environ if env is None else env  # type: ignore[assignment]
    value = env.get("CODEX_HOME")
    return Path(value).expanduser() if value else Path.home() / ".codex"
