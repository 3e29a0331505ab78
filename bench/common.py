"""Shared pieces of the benchmarks: a scripted model and an isolated CODEX_HOME, bare codex runs,
and statistics. Every figure is reported against bare ``codex exec`` measured in the same run."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from plexum_openai_provider._codex.binary import bundled_codex
from plexum_openai_provider._codex.command import exec_argv
from plexum_openai_provider.testing import ScriptedModelServer, write_codex_home


@dataclass
class Env:
    server: ScriptedModelServer
    root: Path
    env: dict[str, str]
    codex: str

    def workspace(self, name: str) -> Path:
        ws = self.root / "ws" / name
        ws.mkdir(parents=True, exist_ok=True)
        return ws


@contextmanager
def bench_env() -> Iterator[Env]:
    codex = bundled_codex()
    if codex is None:
        raise SystemExit("the bundled codex is not installed: pip install -e '.[dev]'")
    with (
        tempfile.TemporaryDirectory(prefix="plexum-bench-") as tmp,
        ScriptedModelServer() as server,
    ):
        root = Path(tmp)
        write_codex_home(root / "codex-home", server.base_url)
        # codex starts a login shell to snapshot its environment: keep this machine's profile
        # (pyenv init and the like) out of the figures, as the tests do.
        (root / "home").mkdir()
        env = dict(os.environ, CODEX_HOME=str(root / "codex-home"), HOME=str(root / "home"))
        yield Env(server, root, env, codex)


def bare_codex_turn(env: Env, workspace: Path, prompt: str, resume: str | None = None) -> float:
    """Wall time of one plain ``codex exec`` with the same command the runner uses."""
    argv = exec_argv(env.codex, resume_thread=resume)
    start = time.perf_counter()
    subprocess.run(
        argv, cwd=workspace, env=env.env, input=prompt.encode(), capture_output=True, check=True
    )
    return time.perf_counter() - start


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"
