"""Helpers for tests: bounded waits and process checks (no sleeps standing in for sync)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from plexum_openai_provider import CodexProvider, HostConfig, TextDelta
from plexum_openai_provider._engine.seam import Engine


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


def provider_on(
    engine: Engine, tmp_path: Path, config: HostConfig | None = None, **kwargs: Any
) -> CodexProvider:
    """A provider on ``engine`` (a fake seam), with a CODEX_HOME (``tmp_path/codex-home``), a
    lock folder and a state folder (``tmp_path/state``: the workspaces' records) of its own."""
    home = tmp_path / "codex-home"
    home.mkdir(parents=True, exist_ok=True)
    return CodexProvider(
        config or HostConfig(),
        engine,
        env={"CODEX_HOME": str(home), "PLEXUM_STATE_DIR": str(tmp_path / "state")},
        lock_dir=tmp_path / "locks",
        **kwargs,
    )


def texts(events: Iterable[Any]) -> list[str]:
    """The text of each text_delta, in order (their message ids are codex's, per engine)."""
    return [e.text for e in events if isinstance(e, TextDelta)]


def _live_processes() -> Iterator[tuple[int, Path]]:
    """(pid, /proc/pid) of every process that is not a zombie."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        folder = Path("/proc") / entry
        try:
            stat = (folder / "stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2] != "Z":
            yield int(entry), folder


def unique_sleep(seconds: int) -> str:
    """A ``sleep`` of about ``seconds`` s whose command line no other process shares, to find it by
    (other runs of these tests may be going on at once on the machine, with their own sleeps)."""
    return f"sleep {seconds}.{uuid.uuid4().int % 10**6:06d}"


def processes_matching(text: str) -> list[int]:
    """PIDs whose command line contains ``text``."""
    out = []
    for pid, folder in _live_processes():
        try:
            cmdline = (folder / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            out.append(pid)
    return out


def plugin_script() -> str:
    """The console script installed next to this interpreter; fails (never skips) without it."""
    script = Path(sys.executable).parent / "plexum-openai-provider-plugin"
    assert script.is_file(), f"{script} is missing: install the package (pip install -e '.[dev]')"
    return str(script)


def codex_processes(codex_home: Path) -> list[int]:
    """Live processes running with this CODEX_HOME in their environment (codex and whatever it
    started that kept its environment)."""
    needle = f"CODEX_HOME={codex_home}".encode()
    out = []
    for pid, folder in _live_processes():
        try:
            environ = (folder / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle in environ:
            out.append(pid)
    return out
