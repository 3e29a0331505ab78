"""Turn overhead against the physical limit, bare ``codex exec`` running the same scripted turn:
a turn through the plugin process (JSON-RPC on stdio) and the same turn run in-process by the
runner, first turns and resumed turns, interleaved; then N agents' turns at once.

    python bench/turn_overhead.py [--rounds 20] [--fanout 1 4 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import Env, bare_codex_turn, bench_env, machine, median

from plexum_openai_provider import AgentContext, CodexProvider, HostConfig, TextDelta, TurnRequest
from plexum_openai_provider._turn.thread_store import read_thread_id
from plexum_openai_provider.plugin.client import PluginClient

TICKS = os.sysconf("SC_CLK_TCK")
KINDS = ("bare", "inproc", "plugin")


def cpu_seconds(pid: int) -> float:
    """The process's own user+system CPU (its codex children are not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Runner:
    def __init__(self, env: Env, provider: CodexProvider, plugin: PluginClient) -> None:
        self.env, self.provider, self.plugin = env, provider, plugin
        self.n = 0

    async def turn(self, kind: str, ws: Path, prompt: str, agent: str | None = None) -> float:
        """One turn; returns its wall time, checking that its answer arrived."""
        agent = agent or ws.name
        self.n += 1
        start = time.perf_counter()
        if kind == "bare":
            resume = read_thread_id(ws)
            await asyncio.to_thread(bare_codex_turn, self.env, ws, prompt, resume)
            elapsed = time.perf_counter() - start
            if resume is None:  # remember bare codex's thread the way the runner does
                newest = max(
                    (self.env.root / "codex-home" / "sessions").rglob("rollout-*.jsonl"),
                    key=lambda p: p.stat().st_mtime,
                )
                (ws / ".plexum-codex-session").write_text(newest.stem[-36:] + "\n")
            return elapsed
        if kind == "inproc":
            turn: Any = await self.provider.start_turn(TurnRequest(AgentContext(agent, ws), prompt))
        else:
            turn = self.plugin.start_turn(f"t{self.n}", AgentContext(agent, ws), prompt)
        texts = [e.text async for e in turn if isinstance(e, TextDelta)]
        result = await turn.result()
        elapsed = time.perf_counter() - start
        assert result.status == "completed" and texts == [f"echo: {prompt}"], (result, texts)
        return elapsed


async def measure(env: Env, rounds: int, fanouts: list[int]) -> dict[str, Any]:
    provider = await CodexProvider.create(HostConfig(), env=env.env)
    plugin = await PluginClient.spawn(env=env.env)
    await plugin.initialize()
    run = Runner(env, provider, plugin)
    times: dict[str, list[float]] = {f"{k}_{w}": [] for k in KINDS for w in ("first", "resume")}
    resumed = {k: env.workspace(f"resume-{k}") for k in KINDS}
    for kind in KINDS:  # warm-up, and the threads the resumed turns continue
        await run.turn(kind, resumed[kind], "start")
    for i in range(rounds):
        order = KINDS[i % 3 :] + KINDS[: i % 3]
        for kind in order:
            times[f"{kind}_first"].append(
                await run.turn(kind, env.workspace(f"{kind}-{i}"), "hello")
            )
            times[f"{kind}_resume"].append(await run.turn(kind, resumed[kind], "again"))
    agents = max(fanouts)
    await asyncio.gather(
        *(
            run.turn("plugin", env.workspace(f"cw-{i}"), "warm", agent=f"agent-{i}")
            for i in range(agents)
        )
    )
    concurrency = {}
    for n in fanouts:
        start = time.perf_counter()
        await asyncio.gather(
            *(run.turn("bare", env.workspace(f"cb{n}-{i}"), f"m{i}") for i in range(n))
        )
        bare_wall = time.perf_counter() - start
        cpu0 = cpu_seconds(plugin.process.pid)
        start = time.perf_counter()
        await asyncio.gather(
            *(run.turn("plugin", env.workspace(f"cp{n}-{i}"), f"m{i}") for i in range(n))
        )
        wall = time.perf_counter() - start
        concurrency[n] = {
            "bare_wall": bare_wall,
            "plugin_wall": wall,
            "cpu_per_turn": (cpu_seconds(plugin.process.pid) - cpu0) / n,
            "peak_rss": peak_rss_mib(plugin.process.pid),
        }
    await plugin.close()
    return {"times": times, "concurrency": concurrency}


def report(out: dict[str, Any], rounds: int) -> str:
    med = {k: median(v) for k, v in out["times"].items()}
    lines = [
        f"Turn wall time, median of {rounds} each, interleaved (the answer checked on every turn):",
        "",
        "| turn | bare `codex exec` (s) | runner in-process (s) | plugin process (s) | plugin / bare |",
        "|---|---|---|---|---|",
    ]
    for w in ("first", "resume"):
        b, i, p = med[f"bare_{w}"], med[f"inproc_{w}"], med[f"plugin_{w}"]
        lines.append(f"| {w} | {b:.3f} | {i:.3f} | {p:.3f} | {p / b:.3f} |")
    lines += [
        "",
        "A first turn starts a new codex thread (a new workspace) of an agent that has run before.",
        "",
        "Agents' turns at once (every turn's answer checked: no event lost):",
        "",
        "| agents | bare codex wall (s) | plugin wall (s) | plugin / bare | plugin CPU per turn (ms) | plugin peak RSS (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for n, c in out["concurrency"].items():
        lines.append(
            f"| {n} | {c['bare_wall']:.2f} | {c['plugin_wall']:.2f} | {c['plugin_wall'] / c['bare_wall']:.3f} |"
            f" {c['cpu_per_turn'] * 1000:.1f} | {c['peak_rss']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--fanout", type=int, nargs="*", default=[1, 4, 16])
    args = parser.parse_args()
    with bench_env() as env:
        out = asyncio.run(measure(env, args.rounds, args.fanout))
    print(f"machine: {machine()}\n")
    print(report(out, args.rounds))


if __name__ == "__main__":
    main()
