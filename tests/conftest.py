"""Shared fixtures: a scripted model server and an isolated CODEX_HOME pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from plexum_openai_provider.testing import ScriptedModelServer, write_codex_home


@pytest.fixture
def model_server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        yield server


@pytest.fixture
def codex_home(tmp_path: Path, model_server: ScriptedModelServer) -> Path:
    home = tmp_path / "codex-home"
    write_codex_home(home, model_server.base_url)
    return home


@pytest.fixture
def codex_env(codex_home: Path) -> dict[str, str]:
    """The environment of every codex the tests start: the real one, with the isolated home."""
    env = dict(os.environ)
    env["CODEX_HOME"] = str(codex_home)
    env.pop("OPENAI_API_KEY", None)
    return env


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws
