"""What confinement costs, and what turning codex's extra features off saves.

    python bench/sandbox_cost.py [--rounds 10] [--commands 10]

On each engine, with ``sandbox: "workspace"`` and ``"none"``: a plain turn (first, and resumed),
and a turn in which the model runs ``--commands`` shell commands one after the other (each its
own model response, as a model's commands are); the extra of that turn over the plain resumed
turn, divided by the commands, is one command's cost. Then the size of the first model request
of a thread (what codex sends the model: its instructions and the tools offered) with the
plugin's features (sub-agents, connectors, browser and computer use, goals off) and with
codex's own. Every answer is checked; the modes run interleaved, round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import Env, Plugin, Table, bench_env, machine, median, ms

from plexum_openai_provider._codex.policy import FEATURES_OFF
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


async def main_async(rounds: int, commands: int) -> str:
    with bench_env() as env:
        costs = await command_cost(env, rounds, commands)
        sizes = await request_size(env)
    return report(costs, sizes, rounds, commands)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--commands", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    print(asyncio.run(main_async(args.rounds, args.commands)))


if __name__ == "__main__":
    main()
