"""Shared fixtures: a scripted model server and an isolated CODEX_HOME pointed at it."""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider._codex.models import CodexModel, parse_models
from plexum_openai_provider.testing import ScriptedModelServer, write_codex_home

# The end-to-end tests run the bundled codex, or the binary this names (to verify other versions).
CODEX_UNDER_TEST = os.environ.get("PLEXUM_TEST_CODEX")
# ... on each engine (PLEXUM_TEST_ENGINES=exec or =app-server runs one).
ENGINES = os.environ.get("PLEXUM_TEST_ENGINES", "exec,app-server").split(",")
# The engine of the test now running (set by the e2e tests' `engine` fixture).
CURRENT = {"engine": "exec"}


def host_config(**config: Any) -> dict[str, Any]:
    """A HostConfig dict for the tests: ``binary`` is the codex under test when one is named,
    ``engine`` the engine the test runs on."""
    if CODEX_UNDER_TEST and "binary" not in config:
        config["binary"] = CODEX_UNDER_TEST
    config.setdefault("engine", CURRENT["engine"])
    return config


def codex_under_test_version() -> str:
    """The version the codex under test reports (the bundled one unless PLEXUM_TEST_CODEX)."""
    from plexum_openai_provider._codex.binary import bundled_codex

    path = CODEX_UNDER_TEST or bundled_codex()
    assert path is not None
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    return out.split()[-1]


@functools.cache
def catalog_models() -> tuple[CodexModel, ...]:
    """The models the codex under test lists (``codex debug models``), in its order."""
    from plexum_openai_provider._codex.binary import bundled_codex

    path = CODEX_UNDER_TEST or bundled_codex()
    assert path is not None
    out = subprocess.run([path, "debug", "models"], capture_output=True, text=True, check=True)
    return tuple(parse_models(out.stdout))


# What the scripted model answers as in a `catalog` test: its own name, gpt-5.5 (tools as
# functions), or the first code-mode model the codex under test lists (0.163/0.169: gpt-6.1-sol;
# 0.171: gpt-6.2-sol).
CATALOG = ("scripted", "gpt-5.5", "code-mode")


def catalog_model(which: str) -> CodexModel | None:
    if which == "scripted":
        return None
    models = catalog_models()
    found = [m for m in models if (m.code_mode if which == "code-mode" else m.id == which)]
    if not found:
        pytest.fail(f"the codex under test lists no {which} model: {[m.id for m in models]}")
    return found[0]


def codex_at_least(version: str) -> bool:
    def parts(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split(".")[:3] if x.isdigit())

    return parts(codex_under_test_version()) >= parts(version)


# Providers made by a test are closed after it (their registrations on the side finish while the
# test's event loop still runs).
OPEN_PROVIDERS: list[Any] = []


@pytest.fixture(autouse=True)
async def _close_providers() -> AsyncIterator[None]:
    yield
    while OPEN_PROVIDERS:
        await OPEN_PROVIDERS.pop().close()


@pytest.fixture
def answering_as(request: pytest.FixtureRequest) -> CodexModel | None:
    """The catalog model the scripted model answers as (None: its own name); a `catalog` test
    runs once for each of CATALOG (tests/e2e/conftest.py)."""
    return catalog_model(getattr(request, "param", "scripted"))


@pytest.fixture
def model_server(answering_as: CodexModel | None) -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as server:
        server.code_mode = answering_as is not None and answering_as.code_mode
        yield server


@pytest.fixture
def codex_home(
    tmp_path: Path, model_server: ScriptedModelServer, answering_as: CodexModel | None
) -> Path:
    home = tmp_path / "codex-home"
    if answering_as is None:
        write_codex_home(home, model_server.base_url)
    else:
        write_codex_home(home, model_server.base_url, model=answering_as.id)
    return home


@pytest.fixture
def codex_env(codex_home: Path) -> dict[str, str]:
    """The environment of every codex the tests start: the real one, with the isolated home."""
    env = dict(os.environ)
    env["CODEX_HOME"] = str(codex_home)
    # codex runs shell tools in a login shell: keep this machine's ~/.bashrc and ~/.profile out.
    home = codex_home.parent / "home"
    home.mkdir(exist_ok=True)
    env["HOME"] = str(home)
    env["PLEXUM_STATE_DIR"] = str(codex_home.parent / "state")  # the workspaces' records
    env.pop("OPENAI_API_KEY", None)
    return env


def records_of(env: dict[str, str], workspace: Path) -> Path:
    """Where a plugin with ``env`` keeps the records of ``workspace`` (its thread id, …), made as
    the workspace's first claim makes it."""
    from plexum_openai_provider._turn.records import open_records

    return open_records(Path(env["PLEXUM_STATE_DIR"]), workspace)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "workspace"
    ws.mkdir()
    return ws
