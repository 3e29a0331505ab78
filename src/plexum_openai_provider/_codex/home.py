"""Where codex keeps its state: ``$CODEX_HOME``, else ``~/.codex``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["codex_home"]


def codex_home(env: Mapping[str, str] | None = None) -> Path:
    value = (os.environ if env is None else env).get("CODEX_HOME")
    return Path(value).expanduser() if value else Path.home() / ".codex"
