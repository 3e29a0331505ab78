"""Plugin overhead: a turn through the plugin process (JSON-RPC on stdio) against the same turn run
in-process by the runner and against bare ``codex exec``, interleaved; then N agents' turns at once
(wall time, the plugin's own CPU, its peak memory). Usage: ``python bench/plugin_overhead.py``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import Env, bare_codex_turn, bench_env, machine, median

from plexum_openai_provider import AgentContext, CodexProvider, HostConfig, TurnRequest
from plexum_openai_provider.plugin.client import PluginClient

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """The process's own user+system CPU (not its children's: codex is not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def inproc_turn(provider: CodexProvider, ws: Path, prompt: str) -> float:
    start = time.perf_counter()
    turn = provider.start_turn(TurnRequest(AgentContext(ws.name, ws), prompt))
    async for _ in turn:
        pass
    assert (await turn.result()).status == "completed"
    return time.perf_counter() - start


async def plugin_turn(plugin: PluginClient, n: int, ws: Path, prompt: str) -> float:
    start = time.perf_counter()
    turn = plugin.start_turn(f"t-{n}", AgentContext(ws.name, ws), prompt)
    async for _ in turn:
        pass
    assert (await turn.result()).status == "completed"
    return time.perf_counter() - start


async def measure(env: Env, rounds: int, fanouts: list[int]) -> dict[str, object]:
    provider = await CodexProvider.create(HostConfig(), env=env.env)
    plugin = await PluginClient.spawn(env=env.env)
    await plugin.initialize()
    times: dict[str, list[float]] = {"bare": [], "inproc": [], "plugin": []}
    ws = {k: env.workspace(f"seq-{k}") for k in times}
    bare_codex_turn(env, env.workspace("warm"), "warm")
    counter = 0
    for i in range(rounds):
        kinds = ["bare", "inproc", "plugin"]
        kinds = kinds[i % 3 :] + kinds[: i % 3]
        for kind in kinds:
            w = env.workspace(f"{kind}-{i}")
            if kind == "bare":
                times[kind].append(bare_codex_turn(env, w, "hello"))
            elif kind == "inproc":
                times[kind].append(await inproc_turn(provider, w, "hello"))
            else:
                counter += 1
                times[kind].append(await plugin_turn(plugin, counter, w, "hello"))
    del ws
    concurrency = {}
    for n in fanouts:
        start = time.perf_counter()
        bare = await asyncio.gather(
            *(
                asyncio.to_thread(bare_codex_turn, env, env.workspace(f"cb{n}-{i}"), f"m{i}")
                for i in range(n)
            )
        )
        bare_wall = time.perf_counter() - start
        cpu0 = cpu_seconds(plugin.process.pid)
        start = time.perf_counter()
        counter += 1000
        await asyncio.gather(
            *(
                plugin_turn(plugin, counter + i, env.workspace(f"cp{n}-{i}"), f"m{i}")
                for i in range(n)
            )
        )
        wall = time.perf_counter() - start
        cpu = cpu_seconds(plugin.process.pid) - cpu0
        concurrency[n] = {
            "bare_wall": bare_wall,
            "plugin_wall": wall,
            "plugin_cpu_per_turn": cpu / n,
            "plugin_peak_rss_mib": peak_rss_mib(plugin.process.pid),
            "bare_slowest": max(bare),
        }
    await plugin.close()
    return {"times": times, "concurrency": concurrency}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--fanout", type=int, nargs="*", default=[1, 8])
    args = parser.parse_args()
    with bench_env() as env:
        out = asyncio.run(measure(env, args.rounds, args.fanout))
    times = out["times"]
    med = {k: median(v) for k, v in times.items()}  # type: ignore[union-attr]
    print(f"machine: {machine()}; rounds: {args.rounds} (interleaved)")
    print("| path | median turn (s) | ratio to bare codex | ratio to in-process |")
    print("|---|---|---|---|")
    for kind in ("bare", "inproc", "plugin"):
        print(
            f"| {kind} | {med[kind]:.3f} | {med[kind] / med['bare']:.3f} | {med[kind] / med['inproc']:.3f} |"
        )
    print()
    print(
        "| agents at once | bare codex wall (s) | plugin wall (s) | ratio | plugin CPU per turn (ms) | plugin peak RSS (MiB) |"
    )
    print("|---|---|---|---|---|---|")
    for n, c in out["concurrency"].items():  # type: ignore[union-attr]
        print(
            f"| {n} | {c['bare_wall']:.3f} | {c['plugin_wall']:.3f} | {c['plugin_wall'] / c['bare_wall']:.3f} |"
            f" {c['plugin_cpu_per_turn'] * 1000:.1f} | {c['plugin_peak_rss_mib']:.1f} |"
        )


if __name__ == "__main__":
    main()
