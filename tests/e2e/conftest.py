"""Every end-to-end test runs on each engine (one parameter, not a copy), unless it is marked
``one_engine`` because it does not depend on how codex is driven, or ``engines(name, …)``
because it tests what only those engines do. A test marked ``catalog`` also runs with the
scripted model answering as catalog models (``answering_as``: gpt-5.5, and the first code-mode
model the codex under test lists), where codex offers tools and sub-agents differently;
``catalog(name, …)`` runs only those of ``CATALOG``: codex sends the scripted model and gpt-5.5
the same input items (the instructions' words and the tools offered differ, not the messages,
images or calls), so a test of those needs one of the two beside code mode."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import CATALOG, CURRENT, ENGINES, OPEN_PROVIDERS


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    catalog = metafunc.definition.get_closest_marker("catalog")
    if catalog is not None:
        unknown = set(catalog.args) - set(CATALOG)
        assert not unknown, f"catalog({', '.join(sorted(unknown))}): not in {CATALOG}"
        metafunc.parametrize("answering_as", catalog.args or CATALOG, indirect=True)
    only = metafunc.definition.get_closest_marker("engines")
    if metafunc.definition.get_closest_marker("one_engine"):
        metafunc.parametrize("engine", ENGINES[:1], indirect=True)
    elif only is not None:
        metafunc.parametrize("engine", [e for e in ENGINES if e in only.args], indirect=True)
    else:
        metafunc.parametrize("engine", ENGINES, indirect=True)


@pytest.fixture(autouse=True)
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    name = request.param
    CURRENT["engine"] = name
    yield name
    CURRENT["engine"] = "exec"


@pytest.fixture(autouse=True)
async def _nothing_outlives_the_test(tmp_path: Path) -> AsyncIterator[None]:
    """Whatever a test started (codex, its shells, bubblewrap's sandboxes, the relay) is gone
    soon after it: a process that names the test's folder in its command line or environment
    and outlives it by 5 s fails the test (and is killed, so it cannot disturb the next)."""
    yield
    while OPEN_PROVIDERS:  # the providers it made are closed first (tests/conftest.py would later)
        await OPEN_PROVIDERS.pop().close()
    needle = str(tmp_path).encode()
    deadline = time.monotonic() + 5
    while left := _naming(needle):
        if time.monotonic() > deadline:
            for pid, _ in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"processes outlived the test: {left}")
        await asyncio.sleep(0.05)


def _naming(needle: bytes) -> list[tuple[int, str]]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            if stat[stat.rfind(b")") + 2 :].startswith(b"Z"):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            out.append((int(entry), cmdline.replace(b"\0", b" ")[:120].decode("utf-8", "replace")))
    return out
