"""Shared pieces of the benchmarks: a scripted model and an isolated CODEX_HOME, the contenders
(bare ``codex exec``, the plugin on each engine, the official Python SDK), process-tree memory, and
statistics. Every figure is reported against bare ``codex exec`` measured in the same run."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plexum_openai_provider._codex.binary import bundled_codex
from plexum_openai_provider._codex.command import exec_argv
from plexum_openai_provider._codex.guard import descendants
from plexum_openai_provider.testing import ScriptedModelServer, write_codex_home

HERE = Path(__file__).parent


@dataclass
class Env:
    server: ScriptedModelServer
    root: Path
    env: dict[str, str]
    codex: str
    counter: int = 0

    def workspace(self, name: str | None = None) -> Path:
        if name is None:
            self.counter += 1
            name = f"w{self.counter}"
        ws = self.root / "ws" / name
        ws.mkdir(parents=True, exist_ok=True)
        return ws


@contextmanager
def bench_env(*script: Any, **server_options: Any) -> Iterator[Env]:
    """A scripted model (``ScriptedModelServer(*script, **server_options)``), a CODEX_HOME and a
    HOME of its own, the plugin's socket and lock folders, in a temporary folder."""
    codex = bundled_codex()
    if codex is None:
        raise SystemExit("the bundled codex is not installed: pip install -e '.[dev,bench]'")
    with (
        tempfile.TemporaryDirectory(prefix="plexum-bench-") as tmp,
        ScriptedModelServer(*script, **server_options) as server,
    ):
        root = Path(tmp)
        write_codex_home(root / "codex-home", server.base_url)
        # codex starts a login shell to snapshot its environment: keep this machine's profile
        # (pyenv init and the like) out of the figures, as the tests do.
        (root / "home").mkdir()
        env = dict(
            os.environ,
            CODEX_HOME=str(root / "codex-home"),
            HOME=str(root / "home"),
            PLEXUM_SOCKET_DIR=str(root / "s"),
            PLEXUM_LOCK_DIR=str(root / "locks"),
        )
        yield Env(server, root, env, codex)


# -- memory ------------------------------------------------------------------------------------
def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss_mib(roots: Sequence[int]) -> float:
    """RSS of the processes ``roots`` and all their descendants, summed."""
    pids: set[int] = set()
    for root in roots:
        pids.add(root)
        pids.update(descendants(root))
    return sum(rss_mib(pid) for pid in pids)


class PeakSampler:
    """Samples the summed RSS of a set of process trees every few ms; keeps the peak."""

    def __init__(self, roots: Any, every_s: float = 0.01) -> None:
        self._roots = roots  # a callable giving the root pids now
        self._every = every_s
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_mib(self._roots()))
            self._stop.wait(self._every)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_mib(self._roots()))


# -- contenders --------------------------------------------------------------------------------
@dataclass
class Timing:
    elapsed: float
    first_text: float | None = None  # when the first text reached the caller
    thread: str | None = None


class BareExec:
    """``codex exec`` as a script would run it: the physical limit of the exec path."""

    name = "bare codex exec"

    def __init__(self, env: Env) -> None:
        self.env = env
        self.pids: set[int] = set()

    async def turn(self, ws: Path, prompt: str, thread: str | None) -> Timing:
        argv = exec_argv(self.env.codex, resume_thread=thread)
        start = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ws,
            env=self.env.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=1 << 24,
        )
        self.pids.add(proc.pid)
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(prompt.encode())
        proc.stdin.close()
        first = None
        thread_id = thread
        async for line in proc.stdout:
            event = json.loads(line)
            if event.get("type") == "thread.started":
                thread_id = event["thread_id"]
            item = event.get("item") or {}
            if first is None and item.get("type") == "agent_message":
                first = time.perf_counter() - start
        await proc.wait()
        self.pids.discard(proc.pid)
        assert proc.returncode == 0
        return Timing(time.perf_counter() - start, first, thread_id)

    def roots(self) -> list[int]:
        return list(self.pids)

    async def close(self) -> None:
        return None


class Worker:
    """A contender driven from a process of its own over JSON lines (plugin_worker.py,
    sdk_worker.py): it times its turns itself, and never shares an interpreter (and its GIL) with
    the benchmark's scripted model server."""

    script = ""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None

    async def _spawn(self, *args: str) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / self.script),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=self.env.env,
            limit=1 << 24,
        )

    async def _ask(self, message: dict[str, Any]) -> Any:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        await self.proc.stdin.drain()
        answer = json.loads(await self.proc.stdout.readline())
        assert "error" not in answer, answer
        return answer

    async def turn(self, ws: Path, prompt: str, thread: str | None, tools: bool = False) -> Timing:
        answer = await self._ask(
            {"op": "turn", "ws": str(ws), "prompt": prompt, "thread": thread, "tools": tools}
        )
        assert answer["text"] == f"echo: {prompt}", answer
        return Timing(answer["elapsed"], answer["first_text"], answer["thread"])

    async def turns(self, turns: list[tuple[Path, str, str | None]]) -> float:
        """Several turns at once; the wall time of all of them."""
        answer = await self._ask(
            {
                "op": "many",
                "turns": [{"ws": str(w), "prompt": p, "thread": t} for w, p, t in turns],
            }
        )
        return float(answer["wall"])

    def roots(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    async def close(self) -> None:
        if self.proc is not None and self.proc.stdin is not None:
            self.proc.stdin.close()
            await self.proc.wait()


class Plugin(Worker):
    """The plugin process, driven over its protocol by the package's host client. Its tree is the
    plugin's (the host driving it is not counted, as Plexum's would not be)."""

    script = "plugin_worker.py"

    def __init__(self, env: Env, engine: str, **config: Any) -> None:
        super().__init__(env)
        self.engine = engine
        self.config = {"engine": engine, **config}
        self.name = f"plugin, {engine}"
        self.pid: int | None = None
        self.initialize: dict[str, Any] = {}

    async def start(self) -> Plugin:
        await self._spawn()
        answer = await self._ask({"op": "start", "config": self.config})
        assert answer["initialize"]["engine"]["name"] == self.engine, answer
        self.pid = answer["pid"]
        self.initialize = answer["initialize"]
        return self

    async def consume(self, ws: Path, ids: list[str]) -> float:
        return float((await self._ask({"op": "consume", "ws": str(ws), "ids": ids}))["elapsed"])

    def roots(self) -> list[int]:
        return [self.pid] if self.pid else []


class Sdk(Worker):
    """The official Python SDK (``openai-codex``, the same codex version) in a process of its own,
    keeping each thread loaded in its one app-server, as its users do. Its tree is its Python
    process (the SDK is the client) and its app-server."""

    script = "sdk_worker.py"
    name = "openai-codex SDK"

    async def start(self) -> Sdk:
        await self._spawn(self.env.codex)
        await self._ask({"op": "ping"})
        return self


# -- statistics --------------------------------------------------------------------------------
def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def pct(xs: Sequence[float], q: float) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(x: float) -> str:
    return f"{x * 1000:.0f}"


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def render(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu},"
        f" Python {platform.python_version()}"
    )


def codex_version(codex: str) -> str:
    return subprocess.run([codex, "--version"], capture_output=True, text=True).stdout.strip()
