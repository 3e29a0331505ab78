"""What confinement costs, and what turning codex's extra features off saves.

    python bench/sandbox_cost.py [--rounds 10] [--commands 10] [--floor 20]

On each engine, with ``sandbox: "workspace"`` and ``"none"``: a plain turn (first, and resumed),
and a turn in which the model runs ``--commands`` shell commands one after the other (each its
own model response, as a model's commands are); the extra of that turn over the plain resumed
turn, divided by the commands, is one command's cost. Then the size of the first model request
of a thread (what codex sends the model: its instructions and the tools offered) with the
plugin's features (sub-agents, connectors, browser and computer use, goals off) and with
codex's own. Every answer is checked; the modes run interleaved, round by round.

Then the floor of one confined command on this machine (``--floor`` rounds, each command run once
a round, in turn): a plain spawn of ``true``; codex's bubblewrap alone (the argv of its ``/proc``
preflight: an empty root, the ``:minimal`` folders, new namespaces); codex's binary starting; codex's
sandbox helper as codex starts it for each command (``codex-linux-sandbox``, its flags as codex
0.163 passes them, seen with strace: the helper runs bubblewrap twice, the preflight and the
sandbox, and itself again inside to apply seccomp) with the smallest profile that works (``:minimal``,
codex's package, the workspace), with the agents' profile, and with 10 more readable folders
(each one a bind mount); the plugin's own helper in front of it (the agent's limits), as codex
runs it for every command; and ``codex sandbox`` with the agents' profile (the CLI: its config,
then the helper). Wall time, and the CPU time of the command's processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import Env, Plugin, Table, bench_env, machine, median, ms

from plexum_openai_provider import HostConfig
from plexum_openai_provider._codex.binary import CodexBinary, resolve_codex
from plexum_openai_provider._codex.command import config_overrides
from plexum_openai_provider._codex.limits import HELPER_NAME, AgentLimits, Limiter
from plexum_openai_provider._codex.policy import (
    FEATURES_OFF,
    PROFILE,
    AgentPolicy,
    prepare_git_folder,
)
from plexum_openai_provider.provider import choose_agent_policy
from plexum_openai_provider.testing import FunctionCall, Message

MODES = ("workspace", "none")


async def command_cost(env: Env, rounds: int, commands: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for engine in ("exec", "app-server"):
        plugins = {mode: await Plugin(env, engine, sandbox=mode).start() for mode in MODES}
        for mode, plugin in plugins.items():
            assert plugin.initialize["sandbox"]["mode"] == mode, plugin.initialize
        threads = {}
        for mode, plugin in plugins.items():  # warm-up, and the threads resumed below
            ws = env.workspace()
            threads[mode] = (ws, (await plugin.turn(ws, "warm", None)).thread)
        times: dict[str, dict[str, list[float]]] = {
            m: {"first": [], "resume": [], "commands": []} for m in MODES
        }
        for i in range(rounds):
            for mode in MODES if i % 2 == 0 else MODES[::-1]:
                plugin = plugins[mode]
                ws, thread = threads[mode]
                times[mode]["first"].append(
                    (await plugin.turn(env.workspace(), "hi", None)).elapsed
                )
                times[mode]["resume"].append((await plugin.turn(ws, f"again {i}", thread)).elapsed)
                call = FunctionCall("exec_command", json.dumps({"cmd": "true"}))
                env.server.enqueue(*([call] * commands), Message(f"echo: run {i}"))
                times[mode]["commands"].append((await plugin.turn(ws, f"run {i}", thread)).elapsed)
        for plugin in plugins.values():
            await plugin.close()
        out[engine] = times
    return out


async def request_size(env: Env) -> dict[str, Any]:
    out: dict[str, Any] = {}
    codex_own = {name: True for name in FEATURES_OFF if name != "multi_agent_v2"}
    for label, features in (("the plugin's (default)", {}), ("codex's own", codex_own)):
        plugin = await Plugin(env, "exec", codex_features=features).start()
        await plugin.turn(env.workspace(), "hi", None)
        request = env.server.requests[-1]
        out[label] = (len(request.raw.encode()), request.tool_names())
        await plugin.close()
    return out


def _helper_profile(policy: AgentPolicy, workspace: Path, readable: list[str]) -> str:
    """The ``--permission-profile`` codex 0.163 gives its sandbox helper for the agents' profile
    (its filesystem table, as codex is configured with it), with ``readable`` for the folders."""

    def entry(path: str, access: str) -> dict[str, Any]:
        return {"path": {"type": "path", "path": path}, "access": access}

    table = policy.config()[f"permissions.{PROFILE}.filesystem"]
    entries = [{"path": {"type": "special", "value": {"kind": "minimal"}}, "access": "read"}]
    entries += [entry(folder, "read") for folder in readable]
    for name, access in table[":workspace_roots"].items():
        entries.append(entry(str(workspace / name), access))
    file_system = {"type": "restricted", "entries": entries}
    return json.dumps({"type": "managed", "file_system": file_system, "network": "restricted"})


async def floor(env: Env, rounds: int) -> dict[str, tuple[list[float], list[float]]]:
    binary: CodexBinary = await resolve_codex(env.codex)
    policy = await choose_agent_policy(
        HostConfig(sandbox="workspace"),
        binary,
        env.env,
        Path(env.env["PLEXUM_SOCKET_DIR"]),
        Path(env.env["PLEXUM_LOCK_DIR"]),
    )
    ws = env.workspace("floor")
    prepare_git_folder(ws)  # as before every confined run
    limiter = Limiter.open(AgentLimits.from_config(HostConfig()), binary.native)
    limiter.prepare(str(ws))  # as before every confined turn
    for name in policy.protected:
        (ws / name).write_text("")
    bwrap = Path(binary.package) / "codex-resources" / "bwrap"
    bwrap_path = str(bwrap) if bwrap.exists() else shutil.which("bwrap")
    minimal = ["/bin", "/etc", "/lib", "/lib64", "/sbin", "/usr"]
    more = [tempfile.mkdtemp(dir=env.root) for _ in range(10)]

    def helper(readable: list[str]) -> list[str]:
        profile = _helper_profile(policy, ws, readable)
        return [
            *("codex-linux-sandbox", "--sandbox-policy-cwd", str(ws), "--command-cwd", str(ws)),
            *("--permission-profile", profile, "--", "true"),
        ]

    argvs: dict[str, tuple[str | None, list[str]]] = {
        "`true`, spawned": (None, ["true"]),
        "codex's bubblewrap alone": (
            bwrap_path,
            [
                *("bwrap", "--as-pid-1", "--new-session", "--die-with-parent"),
                *("--tmpfs", "/", "--dev", "/dev"),
                *(a for folder in minimal for a in ("--ro-bind", folder, folder)),
                *("--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-net"),
                *("--proc", "/proc", "--cap-drop", "ALL", "--", "true"),
            ],
        ),
        "codex's binary starting (`codex --version`)": (None, [binary.path, "--version"]),
        "codex's helper, smallest profile": (binary.path, helper([binary.package])),
        f"codex's helper, the agents' profile ({len(policy.readable)} readable folders)": (
            binary.path,
            helper(list(policy.readable)),
        ),
        "codex's helper, the agents' profile + 10 readable folders": (
            binary.path,
            helper([*policy.readable, *more]),
        ),
        f"the plugin's helper (limits: {limiter.mechanism}), then codex's": (
            str(limiter.helper_dir / HELPER_NAME),
            helper(list(policy.readable)),
        ),
        "`codex sandbox -- true`, the agents' profile": (
            None,
            [binary.path, "sandbox", *config_overrides(policy.config()), "--", "true"],
        ),
    }
    times: dict[str, tuple[list[float], list[float]]] = {label: ([], []) for label in argvs}
    for i in range(rounds):
        labels = list(argvs)
        for label in labels[i % len(labels) :] + labels[: i % len(labels)]:
            executable, argv = argvs[label]
            start = time.perf_counter()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(
                argv, executable=executable, cwd=ws, env=env.env, capture_output=True
            )
            elapsed = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if done.returncode != 0:
                raise SystemExit(f"{label} failed: {done.stderr.decode(errors='replace')[-500:]}")
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            times[label][0].append(elapsed)
            times[label][1].append(cpu)
    limiter.close()
    return times


def floor_report(times: dict[str, tuple[list[float], list[float]]], rounds: int) -> str:
    """Wall time, and the CPU time of the command's processes (user + system, which a busy
    machine moves far less than the wall time)."""
    spawn = median(next(iter(times.values()))[0])
    table = Table(["command (runs `true`)", "median (ms)", "over a plain spawn (ms)", "CPU (ms)"])
    for label, (walls, cpus) in times.items():
        table.add(
            label,
            f"{median(walls) * 1000:.1f}",
            f"{(median(walls) - spawn) * 1000:+.1f}",
            f"{median(cpus) * 1000:.1f}",
        )
    helpers = [
        (median(w), median(c)) for label, (w, c) in times.items() if label.startswith("codex's h")
    ]
    (w0, c0), (w1, c1), (w2, c2) = helpers

    def both(wall: float, cpu: float) -> str:
        return f"{wall * 1000:+.1f} ms ({cpu * 1000:+.1f} ms of CPU)"

    return "\n".join(
        [
            f"The floor of one confined command, medians of {rounds} rounds (each command once a"
            " round, in turn):",
            "",
            table.render(),
            "",
            f"The agents' profile against the smallest: {both(w1 - w0, c1 - c0)}; each further"
            f" readable folder: {both((w2 - w1) / 10, (c2 - c1) / 10)}.",
        ]
    )


def report(costs: dict[str, Any], sizes: dict[str, Any], rounds: int, commands: int) -> str:
    table = Table(
        [
            "engine",
            "sandbox",
            "first turn (ms)",
            "later turn (ms)",
            f"turn with {commands} commands (ms)",
            "per command (ms)",
        ]
    )
    per: dict[str, dict[str, float]] = {}
    for engine, times in costs.items():
        for mode in MODES:
            m = {k: median(v) for k, v in times[mode].items()}
            per.setdefault(engine, {})[mode] = (m["commands"] - m["resume"]) / commands
            table.add(
                engine,
                mode,
                ms(m["first"]),
                ms(m["resume"]),
                ms(m["commands"]),
                f"{per[engine][mode] * 1000:.1f}",
            )
    lines = [
        f"Medians of {rounds} rounds; the modes interleaved. A command is `true`, run with"
        " `exec_command`, each in a model response of its own; its cost is the extra of the"
        f" turn with {commands} commands over the later plain turn, divided by {commands}.",
        "",
        table.render(),
        "",
        "Confined against unconfined, per command: "
        + "; ".join(
            f"{engine} {(p['workspace'] - p['none']) * 1000:+.1f} ms" for engine, p in per.items()
        )
        + ".",
        "",
        "The first model request of a thread (codex's instructions, the tools offered):",
        "",
    ]
    size_table = Table(["codex features", "request bytes", "tools offered"])
    for label, (size, tools) in sizes.items():
        size_table.add(label, f"{size:,}", len(tools))
    lines.append(size_table.render())
    return "\n".join(lines)


async def main_async(rounds: int, commands: int, floor_rounds: int) -> str:
    with bench_env() as env:
        parts = []
        if rounds:
            costs = await command_cost(env, rounds, commands)
            sizes = await request_size(env)
            parts.append(report(costs, sizes, rounds, commands))
        if floor_rounds:
            parts.append(floor_report(await floor(env, floor_rounds), floor_rounds))
    return "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10, help="0: no turns")
    parser.add_argument("--commands", type=int, default=10)
    parser.add_argument("--floor", type=int, default=20, help="0: no floor")
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    print(asyncio.run(main_async(args.rounds, args.commands, args.floor)))


if __name__ == "__main__":
    main()
