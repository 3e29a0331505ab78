"""Turn overhead: a turn run in-process by the runner against bare ``codex exec``, same scripted
turn, same machine, interleaved. Usage: ``python bench/turn_overhead.py [--rounds N]``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import Env, bare_codex_turn, bench_env, machine, median

from plexum_openai_provider import AgentContext, CodexProvider, HostConfig, TurnRequest
from plexum_openai_provider.thread_store import read_thread_id


async def runner_turn(provider: CodexProvider, workspace: Path, prompt: str) -> float:
    start = time.perf_counter()
    turn = provider.start_turn(TurnRequest(AgentContext("bench", workspace), prompt))
    async for _ in turn:
        pass
    result = await turn.result()
    elapsed = time.perf_counter() - start
    assert result.status == "completed", result
    return elapsed


async def measure(env: Env, rounds: int) -> dict[str, list[float]]:
    provider = await CodexProvider.create(HostConfig(), env=env.env)
    times: dict[str, list[float]] = {
        k: [] for k in ("bare_first", "runner_first", "bare_resume", "runner_resume")
    }
    bare_ws, runner_ws = env.workspace("bare-resume"), env.workspace("runner-resume")
    # Warm-up: page the binary in, create the resumed threads.
    bare_codex_turn(env, env.workspace("warm"), "warm up")
    await runner_turn(provider, runner_ws, "start")
    bare_codex_turn(env, bare_ws, "start")
    bare_thread = _newest_thread(env)
    for i in range(rounds):
        order = [0, 1] if i % 2 == 0 else [1, 0]
        for which in order:
            if which == 0:
                times["bare_first"].append(bare_codex_turn(env, env.workspace(f"bf{i}"), "hello"))
                times["bare_resume"].append(
                    bare_codex_turn(env, bare_ws, "again", resume=bare_thread)
                )
            else:
                times["runner_first"].append(
                    await runner_turn(provider, env.workspace(f"rf{i}"), "hello")
                )
                times["runner_resume"].append(await runner_turn(provider, runner_ws, "again"))
    assert read_thread_id(runner_ws) is not None
    return times


def _newest_thread(env: Env) -> str:
    files = sorted(
        (env.root / "codex-home" / "sessions").rglob("rollout-*.jsonl"),
        key=lambda p: p.stat().st_mtime,
    )
    return files[-1].stem[-36:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    with bench_env() as env:
        times = asyncio.run(measure(env, args.rounds))
    med = {k: median(v) for k, v in times.items()}
    print(f"machine: {machine()}")
    print(f"rounds: {args.rounds} (interleaved)")
    print("| turn | bare codex exec (median s) | runner (median s) | ratio |")
    print("|---|---|---|---|")
    for kind in ("first", "resume"):
        bare, ours = med[f"bare_{kind}"], med[f"runner_{kind}"]
        print(f"| {kind} | {bare:.3f} | {ours:.3f} | {ours / bare:.3f} |")
    if args.json:
        args.json.write_text(json.dumps(times, indent=1))


if __name__ == "__main__":
    main()
