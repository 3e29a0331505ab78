"""One agent cannot take the machine from the others: its commands' processes, memory and file
size are bounded (``agent_limits``), and a command with a terminal runs confined like any other.

Each hog is bounded in the test itself, a little above the limit the test configures, so that a
missing limit fails the test instead of taking the machine down. While the hog runs in one
agent's turn, another agent's turn does real work (a file, a child process) and completes; its
time beside the hog is printed against its time alone.
"""

from __future__ import annotations

import asyncio
import json
import re
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import FunctionCall, Message, ResponsesRequest
from tests.conftest import host_config
from tests.helpers import wait_until

LIMITS = {"processes": 128, "memory_mb": 256, "file_size_mb": 16}
# Each hog prints how far it got, flushed, so what it reached survives its being killed. It starts
# when the test has sent the other agent's turn (hog.go), so that the two run at once.
HOGS = {
    "fork": """
        import os, time
        open("hog.started", "w").close()
        while not os.path.exists("hog.go"): time.sleep(0.01)  # the other agent's turn is under way
        r, w = os.pipe()
        children, error = [], "none"
        for _ in range(200):  # the limit is 128 processes
            try:
                pid = os.fork()
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            if pid == 0:
                os.close(w); os.read(r, 1); os._exit(0)
            children.append(pid)
        print("HOG reached", len(children), "processes;", error, flush=True)
        os.close(w)
        for pid in children:
            os.waitpid(pid, 0)
    """,
    "memory": """
        import os, time
        open("hog.started", "w").close()
        while not os.path.exists("hog.go"): time.sleep(0.01)  # the other agent's turn is under way
        held = []
        for mb in range(1, 385):  # the limit is 256 MB
            held.append(b"x" * (1 << 20))
            if mb % 16 == 0:
                print("HOG reached", mb, "MB", flush=True)
        print("HOG reached the end", flush=True)
    """,
    "disk": """
        import os, time
        open("hog.started", "w").close()
        while not os.path.exists("hog.go"): time.sleep(0.01)  # the other agent's turn is under way
        written, error = 0, "none"
        with open("filler.bin", "wb", buffering=0) as f:
            for _ in range(32):  # the limit is 16 MB a file
                try:
                    f.write(b"x" * (1 << 20))
                except OSError as exc:
                    error = f"{type(exc).__name__}: {exc}"
                    break
                written += 1
        print("HOG reached", written, "MB;", error, flush=True)
    """,
    # The private /tmp is a tmpfs: its pages count against the agent's memory.
    "tmp": """
        import os, time
        open("hog.started", "w").close()
        while not os.path.exists("hog.go"): time.sleep(0.01)  # the other agent's turn is under way
        written, error = 0, "none"
        for n in range(384):  # 1 MB files (the file-size limit is 16 MB), memory limit 256 MB
            try:
                with open(f"/tmp/filler-{n}", "wb") as f:
                    f.write(b"x" * (1 << 20))
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
            written += 1
            if written % 16 == 0:
                print("HOG reached", written, "MB in /tmp", flush=True)
        print("HOG reached", written, "MB in /tmp;", error, flush=True)
    """,
}
CALM = (
    'python3 -c \'import subprocess; open("calm.txt", "w").write("x" * 100000);'
    ' print(subprocess.run(["sh", "-c", "echo CALM-OK"], capture_output=True, text=True)'
    '.stdout.strip(), len(open("calm.txt").read()))\''
)


def command_script(commands: dict[str, str]) -> Any:
    """The model: a user message naming a key gets that command run, once; then "done"."""

    def script(request: ResponsesRequest) -> Any:
        if request.input[-1].get("type") == "function_call_output":
            return Message("done")
        key = request.last_user_text().split()[-1]
        return FunctionCall("exec_command", json.dumps({"cmd": commands[key]}), call_id=key)

    return script


def outputs(requests: list[ResponsesRequest]) -> dict[str, str]:
    out: dict[str, str] = {}
    for request in requests:
        for item in request.items_of_type("function_call_output"):
            output = item["output"]
            if not isinstance(output, str):
                output = "\n".join(p.get("text", "") for p in output if isinstance(p, dict))
            out[item["call_id"]] = output
    return out


def hog_env(codex_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """codex makes its helper folder (where the plugin puts its own helper) only for a
    CODEX_HOME outside the temporary folder, as ~/.codex is: the tests' is in it, so codex is
    told of another."""
    temporary = tmp_path / "tmpdir"
    temporary.mkdir(exist_ok=True)
    return {**codex_env, "TMPDIR": str(temporary)}


def check_hog(hog: str, read: str, hogger: Path) -> None:
    """What the hog's own output shows: it was stopped at the limit, not before, not after."""
    reached = [line for line in read.splitlines() if line.startswith("HOG reached")]
    assert reached, (hog, read)
    last = reached[-1]
    if hog == "fork":
        count = int(last.split()[2])
        assert 0 < count < LIMITS["processes"], last
        assert "Resource temporarily unavailable" in last, last
    elif hog in ("memory", "tmp"):
        # (a line the kill cut short may end the output: the last figure is what it reached)
        figures = [int(n) for n in re.findall(r"HOG reached (\d+) MB", read)]
        assert "the end" not in read and figures and figures[-1] <= LIMITS["memory_mb"], read
        assert "exited with code 137" in read or "Killed" in read, read
    else:
        assert last.startswith(f"HOG reached {LIMITS['file_size_mb']} MB;"), last
        assert "File too large" in last, last
        assert (hogger / "filler.bin").stat().st_size == LIMITS["file_size_mb"] << 20


async def test_a_hog_ends_in_its_own_turn_while_another_agent_works(
    codex_env: dict[str, str], tmp_path: Path, model_server: Any, engine: str
) -> None:
    # One plugin; each hog in an agent (and so a cgroup, a private /tmp) of its own, one after
    # the other, each beside a turn of the calm agent and followed by a turn of its own agent.
    calm = tmp_path / "calm"
    calm.mkdir()
    commands = {"calm": CALM}
    for hog in HOGS:
        (tmp_path / f"hog-{hog}").mkdir()
        (tmp_path / f"hog-{hog}" / "hog.py").write_text(textwrap.dedent(HOGS[hog]))
        commands[f"hog-{hog}"] = "python3 hog.py"
        commands[f"after-{hog}"] = "echo AFTER-OK"
    model_server.script = command_script(commands)
    beside_s: dict[str, float] = {}
    seen: dict[str, str] = {}
    async with await PluginClient.spawn(env=hog_env(codex_env, tmp_path)) as plugin:
        init = await plugin.initialize(host_config(agent_limits=LIMITS))
        assert init["limits"] == {
            **LIMITS,
            "cpu_weight": 100,
            "mechanism": init["limits"]["mechanism"],
        }, init["limits"]
        first = await plugin.start_turn("t-c0", AgentContext("calm", calm), "run calm").result()
        assert first.status == "completed", first
        for hog in HOGS:
            hogger = tmp_path / f"hog-{hog}"
            agent = AgentContext(f"hog-{hog}", hogger)
            hog_turn = plugin.start_turn(f"t-h-{hog}", agent, f"run hog-{hog}")
            await wait_until(lambda: (hogger / "hog.started").exists(), timeout=60)  # noqa: B023
            started = time.monotonic()
            calm_turn = plugin.start_turn(f"t-c-{hog}", AgentContext("calm", calm), "run calm")
            await asyncio.sleep(0)  # (the request is on its way)
            (hogger / "hog.go").touch()
            beside = await calm_turn.result()
            beside_s[hog] = time.monotonic() - started
            hogged = await hog_turn.result()
            assert beside.status == hogged.status == "completed", (hog, beside, hogged)
            seen.update(outputs(model_server.requests))
            assert "CALM-OK 100000" in seen["calm"], (hog, seen["calm"])
            after = await plugin.start_turn(f"t-a-{hog}", agent, f"run after-{hog}").result()
            assert after.status == "completed", (hog, after)  # the hog's agent works again
        started = time.monotonic()  # the same turn again, every hog gone: its time alone
        alone = await plugin.start_turn("t-c9", AgentContext("calm", calm), "run calm").result()
        alone_s = time.monotonic() - started
    assert alone.status == "completed", alone
    seen.update(outputs(model_server.requests))
    for hog in HOGS:
        assert "AFTER-OK" in seen[f"after-{hog}"], (hog, seen[f"after-{hog}"])
        read = seen[f"hog-{hog}"]
        check_hog(hog, read, tmp_path / f"hog-{hog}")
        model_read = " | ".join(line for line in read.splitlines()[2:] if line.strip())
        print(
            f"\n{engine} {hog} hog ({init['limits']['mechanism']}): the model read:"
            f" {model_read!r}; the other agent's turn took {beside_s[hog]:.2f} s beside it,"
            f" {alone_s:.2f} s alone"
        )


@pytest.mark.parametrize("helper_folder", [False, True], ids=["plugin-path", "codex-folder"])
async def test_a_terminal_command_runs_confined_and_bounded(
    codex_env: dict[str, str],
    workspace: Path,
    tmp_path: Path,
    model_server: Any,
    helper_folder: bool,
    engine: str,
) -> None:
    # codex looks its sandbox helper up on the command's PATH for a terminal (portable-pty):
    # the plugin's own folder when codex has none (a CODEX_HOME in the temporary folder), codex's
    # folder, where the plugin's helper took the place of codex's link, otherwise.
    env = hog_env(codex_env, tmp_path) if helper_folder else codex_env
    script = (
        "tty; cat /proc/self/cgroup; ulimit -f; echo TTY-OK; cat ../outside.txt;"
        " echo $$ > /sys/fs/cgroup/pids/cgroup.procs"
    )
    (tmp_path / "outside.txt").write_text("OUTSIDE-SECRET\n")
    args = {"cmd": script, "tty": True, "yield_time_ms": 10000}
    model_server.enqueue(
        FunctionCall("exec_command", json.dumps(args), call_id="t"), Message("done")
    )
    async with await PluginClient.spawn(env=env) as plugin:
        init = await plugin.initialize(host_config(agent_limits=LIMITS))
        result = await plugin.start_turn("t-1", AgentContext("cx", workspace), "go").result()
    assert result.status == "completed", result
    read = outputs(model_server.requests)["t"]
    print(f"\n{engine} tty ({'codex folder' if helper_folder else 'plugin PATH'}): {read!r}")
    assert "TTY-OK" in read and "not a tty" not in read, read
    if engine == "exec" or helper_folder:
        assert "/plexum-" in read  # in the agent's cgroup
        assert str(LIMITS["file_size_mb"] * 1024) in read  # ulimit -f: 1024-byte blocks
    else:
        # An app-server with no folder of its own runs its commands without a terminal
        # unbounded, and says so (codex 0.171 runs a terminal's by its own path too; 0.163 looks
        # it up on PATH and finds the plugin's helper).
        assert "terminal" in init["limits"]["unbounded"], init["limits"]
    assert "OUTSIDE-SECRET" not in read and "outside.txt: No such file" in read  # confined
    # ... with no way out of its cgroup: the cgroup filesystem is not there.
    assert "/sys/fs/cgroup/pids/cgroup.procs: No such file or directory" in read
