"""Ending what codex started without breaking the operator's shell (SIGTERM before SIGKILL).

codex runs the user's login shell (its environment snapshot, and shell commands). With pyenv that
shell runs ``pyenv rehash``, which takes a lock file with noclobber and removes it in an EXIT
trap: a shell ended by SIGKILL leaves the lock, and every later login shell of the user then waits
60 s for it. The HOME of these tests has such a login shell (a script in ``.bashrc`` that takes a
noclobber lock, works a while and releases the lock in its EXIT trap); whatever the plugin ends,
in every way a turn can end, no lock and no process may be left.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from plexum_openai_provider.testing import FunctionCall, Hang, Message, ScriptedModelServer
from tests.helpers import codex_processes, processes_matching
from tests.raw_plugin import RawPlugin, turn_params

SCRIPT = "pyenv-like-rehash"
# What pyenv-rehash does (pyenv 2.x): a noclobber lock file, removed by an EXIT trap; a shell that
# finds it waits for it (pyenv: 60 s; here 10 s), then gives up ("busy": a lock left behind, or
# held far too long). The trap says so before it removes the lock: a shell ended by SIGTERM may be
# ended by a SIGPIPE as soon as the lock is gone (its stderr, codex's pipe, is closed when codex
# has exited), as pyenv's may.
LOCK_SCRIPT = r"""#!/bin/bash
set -o noclobber
tries=0
until { echo "$$" > "$HOME/.shim-lock"; } 2>/dev/null; do
  tries=$((tries + 1))
  if [ "$tries" -ge 200 ]; then echo "busy $$" >> "$HOME/lock.log"; exit 1; fi
  sleep 0.05
done
set +o noclobber
trap 'echo "released $$" >> "$HOME/lock.log"; rm -f "$HOME/.shim-lock"' EXIT
echo "took $$" >> "$HOME/lock.log"
sleep "${1:-$(cat "$HOME/work_s")}"
"""
# What the plugin promises (docs/guarantees.md): a leftover's own end (a login shell's snapshot
# may finish) is awaited up to 1 s, then SIGTERM, 0.5 s, SIGKILL; with margin for a loaded box.
BOUND_S = 5.0


class LoginShell:
    """The pyenv-like login shell of a test HOME, and what it recorded."""

    def __init__(self, home: Path) -> None:
        self.home = home
        script = home / SCRIPT
        script.write_text(LOCK_SCRIPT)
        script.chmod(0o755)
        (home / ".bashrc").write_text(f'"$HOME/{SCRIPT}"\n')
        self.work(0.6)

    def work(self, seconds: float) -> None:
        (self.home / "work_s").write_text(f"{seconds}\n")

    def log(self, kind: str) -> int:
        path = self.home / "lock.log"
        lines = path.read_text().splitlines() if path.exists() else []
        return sum(1 for line in lines if line.startswith(kind + " "))

    @property
    def locked(self) -> bool:
        return (self.home / ".shim-lock").exists()

    async def wait_locked(self) -> None:
        """Until a login shell holds the lock (the end that follows lands mid-shell)."""
        deadline = time.monotonic() + 30
        while not self.locked:
            assert time.monotonic() < deadline, "no login shell took the lock"
            await asyncio.sleep(0.01)
        # The shell that holds it is found as nothing_left looks for it.
        assert processes_matching(str(self.home / SCRIPT)), "the login shell is not seen"

    async def nothing_left(
        self, codex_home: Path, since: float, plugin: RawPlugin | None = None
    ) -> float:
        """Seconds from ``since`` until no lock, no login shell and no codex is left, but for a
        live ``plugin`` and its app-server (they have CODEX_HOME in their environment too)."""
        keep = set()
        if plugin is not None and plugin.process.returncode is None:
            keep = {plugin.process.pid, *processes_matching(" app-server")}
        while True:
            left = [p for p in codex_processes(codex_home) if p not in keep]
            # (by its path in this test's HOME: other runs of the suite may be going on at once)
            left += processes_matching(str(self.home / SCRIPT))
            if not left and not self.locked:
                return time.monotonic() - since
            if time.monotonic() - since > BOUND_S:
                raise AssertionError(
                    f"after {BOUND_S} s: lock {'left' if self.locked else 'gone'}, processes {left}"
                )
            await asyncio.sleep(0.01)

    def assert_every_lock_released(self, at_least: int) -> None:
        log = (self.home / "lock.log").read_text()
        took = self.log("took")
        assert took >= at_least, f"the login shell took the lock {took} times"
        assert self.log("released") == took, log
        assert self.log("busy") == 0, log  # no shell found a lock left behind
        assert not self.locked


@pytest.fixture
def shell(codex_env: dict[str, str]) -> LoginShell:
    return LoginShell(Path(codex_env["HOME"]))


async def test_quick_turns_and_shutdown_leave_no_lock(
    codex_env: dict[str, str], workspace: Path, codex_home: Path, shell: LoginShell, engine: str
) -> None:
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize()
    for n in range(3):
        answer = await plugin.request(n, "turn/start", turn_params(f"t-{n}", "cx", workspace, "hi"))
        ended = time.monotonic()
        assert answer["result"]["status"] == "completed"
        if engine == "exec":  # codex has exited: what it left is the plugin's to end
            left = await shell.nothing_left(codex_home, ended, plugin)
            print(f"exec turn {n}: nothing left {left:.2f} s after its end")
    closed = time.monotonic()
    assert await plugin.close() == 0
    print(f"after close: nothing left in {await shell.nothing_left(codex_home, closed):.2f} s")
    shell.assert_every_lock_released(at_least=3 if engine == "exec" else 1)


@pytest.mark.parametrize("how", ["cancel", "timeout", "shutdown", "kill -9"])
async def test_an_end_mid_login_shell_leaves_no_lock(
    codex_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
    shell: LoginShell,
    how: str,
) -> None:
    # The end lands while the login shell holds the lock (a timeout 1.5 s into the turn, too).
    shell.work(2)
    model_server.enqueue(Hang())
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize({"turn_timeout_s": 1.5} if how == "timeout" else None)
    await plugin.submit("t", "turn/start", turn_params("t-1", "cx", workspace, "hi"))
    await shell.wait_locked()
    ended = time.monotonic()
    if how == "kill -9":
        plugin.process.kill()
        await plugin.process.wait()
    elif how == "shutdown":
        assert await plugin.close() == 0
    else:
        if how == "cancel":
            assert "result" in await plugin.request("c", "turn/cancel", {"turn_id": "t-1"})
        answer = await plugin.answer("t", timeout=30)
        assert answer["result"]["status"] == ("cancelled" if how == "cancel" else "failed")
    # On app-server a cancelled or timed-out turn's thread stays loaded: its login shell may
    # finish by itself, within the bound.
    left = await shell.nothing_left(codex_home, ended, plugin)
    print(f"{how}: nothing left {left:.2f} s after it")
    shell.assert_every_lock_released(at_least=1)
    if plugin.process.returncode is None:
        assert await plugin.close() == 0


async def test_what_a_turn_left_running_in_the_background_ends_with_it_gently(
    codex_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
    shell: LoginShell,
    engine: str,
) -> None:
    # The thread's first turn (its login shell snapshot ends by itself); then the model leaves a
    # shell running in the background (codex's background terminal: the app-server would keep
    # it for the thread's later turns) and answers. Unconfined: a confined command cannot see or
    # write the user's home, where the lock is (nor can pyenv's rehash there).
    plugin = await RawPlugin.spawn(codex_env)
    await plugin.initialize({"sandbox": "none"})
    first = await plugin.request(1, "turn/start", turn_params("t-1", "cx", workspace, "hi"))
    assert first["result"]["status"] == "completed"
    await shell.nothing_left(codex_home, time.monotonic(), plugin)
    command = {"cmd": f"{shell.home / SCRIPT} 30", "yield_time_ms": 250}
    model_server.enqueue(FunctionCall("exec_command", json.dumps(command)), Message("started"))
    answer = await plugin.request(2, "turn/start", turn_params("t-2", "cx", workspace, "go"))
    ended = time.monotonic()
    assert answer["result"]["status"] == "completed"
    [output] = model_server.requests[-1].items_of_type("function_call_output")
    assert "Process running with session ID" in output["output"]  # it was left running
    left = await shell.nothing_left(codex_home, ended, plugin)
    print(f"{engine}: the background shell ended {left:.2f} s after its turn")
    shell.assert_every_lock_released(at_least=2)
    assert await plugin.close() == 0
