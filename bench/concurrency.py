"""Agents' turns at once, and memory: bare ``codex exec``, the plugin on each engine, and the
official Python SDK, in one run.

    python bench/concurrency.py [--fanout 1 4 16] [--idle-agents 50]

For N agents whose threads exist, N later turns start at once; reported: the wall time until the
last one ended, and the peak RSS of the contender's whole process tree during it (bare codex: the
N codex processes and their children; the plugin: its process, codex and everything under it;
the SDK: its Python process and its app-server), sampled every 10 ms. Then the idle memory of a
contender that has run one turn for each of many agents.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import (
    BareExec,
    Env,
    PeakSampler,
    Plugin,
    Sdk,
    Table,
    bench_env,
    machine,
    median,
    tree_rss_mib,
)


async def fanout(env: Env, contender: Any, n: int, rounds: int) -> tuple[float, float]:
    """(median wall, highest peak RSS) over ``rounds`` rounds of N later turns at once."""
    agents = []
    for _ in range(n):
        ws = env.workspace()
        timing = await contender.turn(ws, "first", None)
        agents.append((ws, timing.thread))
    walls, peaks = [], []
    for r in range(rounds):
        prompt = f"at once {n}/{r}"
        with PeakSampler(contender.roots) as sampler:
            start = time.perf_counter()
            if isinstance(contender, BareExec):
                await asyncio.gather(*(contender.turn(ws, prompt, thread) for ws, thread in agents))
            else:
                await contender.turns([(ws, prompt, thread) for ws, thread in agents])
            walls.append(time.perf_counter() - start)
        peaks.append(sampler.peak)
    return median(walls), max(peaks)


async def idle(env: Env, contender: Any, agents: int, wait_s: float = 1.0) -> float:
    for _ in range(agents):
        await contender.turn(env.workspace(), "hello", None)
    await asyncio.sleep(wait_s)
    return tree_rss_mib(contender.roots())


async def measure(env: Env, fanouts: list[int], idle_agents: int, rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"fanout": {}, "idle": {}}
    makers = {
        "bare": lambda: BareExec(env),
        # The scripted model serves any number of streams: no account limit to respect here.
        "exec": lambda: Plugin(env, "exec", max_concurrent_turns=64).start(),
        "app": lambda: Plugin(env, "app-server", max_concurrent_turns=64).start(),
        "sdk": lambda: Sdk(env).start(),
    }
    for key, make in makers.items():
        contender = make()
        if asyncio.iscoroutine(contender):
            contender = await contender
        for n in fanouts:
            out["fanout"].setdefault(n, {})[key] = await fanout(env, contender, n, rounds)
        if key != "bare":
            out["idle"][key] = await idle(env, contender, idle_agents)
        await contender.close()
    # The same, with idle threads unloaded after 2 s instead of 10 minutes.
    env.env["PLEXUM_IDLE_UNLOAD_S"] = "2"
    unloading = await Plugin(env, "app-server").start()
    out["idle"]["app_unloaded"] = await idle(env, unloading, idle_agents, wait_s=4.0)
    await unloading.close()
    del env.env["PLEXUM_IDLE_UNLOAD_S"]
    return out


def report(out: dict[str, Any], idle_agents: int) -> str:
    table = Table(
        [
            "agents",
            "bare exec wall (s)",
            "plugin exec",
            "plugin app-server",
            "SDK",
            "bare exec RSS (MiB)",
            "plugin exec",
            "plugin app-server",
            "SDK",
            "app-server / bare: wall",
            "RSS",
        ]
    )
    for n, row in out["fanout"].items():
        walls = [row[k][0] for k in ("bare", "exec", "app", "sdk")]
        rss = [row[k][1] for k in ("bare", "exec", "app", "sdk")]
        table.add(
            n,
            *(f"{w:.2f}" for w in walls),
            *(f"{r:.0f}" for r in rss),
            f"{walls[2] / walls[0]:.2f}",
            f"{rss[2] / rss[0]:.2f}",
        )
    idle_table = Table(
        [
            "",
            "plugin exec",
            "plugin app-server (threads loaded)",
            "plugin app-server (idle threads unloaded)",
            "SDK (threads loaded)",
        ]
    )
    idle_table.add(
        f"RSS of the process tree, idle, after one turn for each of {idle_agents} agents (MiB)",
        *(f"{out['idle'][k]:.0f}" for k in ("exec", "app", "app_unloaded", "sdk")),
    )
    return "\n".join(
        [
            f"Later turns of N agents at once (every answer checked), {out['rounds']} rounds:"
            " median wall time, and the highest peak RSS of the whole process tree.",
            "",
            table.render(),
            "",
            idle_table.render(),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fanout", type=int, nargs="*", default=[1, 4, 16])
    parser.add_argument("--idle-agents", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    with bench_env() as env:
        out = asyncio.run(measure(env, args.fanout, args.idle_agents, args.rounds))
        out["rounds"] = args.rounds
    print(report(out, args.idle_agents))


if __name__ == "__main__":
    main()
