"""The plugin at its defaults (app-server, agents confined) against the official Python SDK
(``openai-codex``, the same codex, one app-server, at its own defaults), in one run of about a
minute: the ratios that must not drift back.

    python bench/vs_sdk.py [--rounds 20] [--bursts 5] [--unconfined]

Printed: a resumed turn (median, plugin / SDK), its first text delta (plugin − SDK), N agents'
resumed turns at once (median wall, plugin / SDK) and the peak RSS of each contender's process
tree during the largest burst (the plugin's process and codex under it; the SDK's Python process
and its app-server). The comparisons are medians of each round's own (a round's plugin and SDK
turns run one after the other), which a shared machine's changing load moves less than a ratio
of two medians. ``--unconfined`` adds the plugin with ``sandbox: "none"`` in the same run,
which shows what confinement costs a turn that runs no command. Every answer is checked; the
contenders take turns, round by round, in a rotating order.
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
    Env,
    PeakSampler,
    Plugin,
    Sdk,
    Table,
    bench_env,
    codex_version,
    machine,
    median,
    ms,
)

from plexum_openai_provider._turn.admission import API_KEY_LIMIT


async def contenders(env: Env, unconfined: bool, burst: int) -> dict[str, Any]:
    # The scripted model needs no login, and a codex not logged in gets a ChatGPT account's
    # admission limit (2 turns at once); the SDK admits every turn: the plugin gets an API
    # key's, above the largest burst, as the comparison is meant.
    limit = {"max_concurrent_turns": max(API_KEY_LIMIT, burst)}
    out: dict[str, Any] = {"plugin": await Plugin(env, "app-server", **limit).start()}
    mode = out["plugin"].initialize["sandbox"]["mode"]
    if mode != "workspace":
        raise SystemExit(f"the plugin's default sandbox here is {mode!r}, not confined: {out}")
    if unconfined:
        out["plugin, sandbox none"] = await Plugin(
            env, "app-server", sandbox="none", **limit
        ).start()
    out["SDK"] = await Sdk(env).start()
    return out


def rotate(keys: list[str], i: int) -> list[str]:
    return keys[i % len(keys) :] + keys[: i % len(keys)]


async def resumed(env: Env, who: dict[str, Any], rounds: int) -> dict[str, dict[str, list[float]]]:
    threads = {}
    for key, contender in who.items():  # a thread each, and a warm-up turn in it
        ws = env.workspace()
        timing = await contender.turn(ws, "start", None)
        await contender.turn(ws, "warm", timing.thread)
        threads[key] = (ws, timing.thread)
    out: dict[str, dict[str, list[float]]] = {k: {"turn": [], "first": []} for k in who}
    for i in range(rounds):
        for key in rotate(list(who), i):
            ws, thread = threads[key]
            timing = await who[key].turn(ws, f"again {i}", thread)
            out[key]["turn"].append(timing.elapsed)
            out[key]["first"].append(timing.first_text or timing.elapsed)
    return out


async def bursts(
    env: Env, who: dict[str, Any], sizes: list[int], rounds: int
) -> dict[int, dict[str, tuple[list[float], float]]]:
    """For each size N: (each round's wall, highest peak RSS in MiB) of N resumed turns at once."""
    out: dict[int, dict[str, tuple[list[float], float]]] = {}
    for n in sizes:
        agents = {}
        for key, contender in who.items():
            agents[key] = []
            for _ in range(n):
                ws = env.workspace()
                agents[key].append((ws, (await contender.turn(ws, "first", None)).thread))
        walls: dict[str, list[float]] = {k: [] for k in who}
        peaks: dict[str, float] = {k: 0.0 for k in who}
        for r in range(rounds):
            for key in rotate(list(who), r):
                prompt = f"at once {n}/{r}"
                with PeakSampler(who[key].roots) as sampler:
                    start = time.perf_counter()
                    await who[key].turns([(ws, prompt, thread) for ws, thread in agents[key]])
                    walls[key].append(time.perf_counter() - start)
                peaks[key] = max(peaks[key], sampler.peak)
        out[n] = {k: (walls[k], peaks[k]) for k in who}
    return out


def report(
    turns: dict[str, dict[str, list[float]]],
    at_once: dict[int, dict[str, tuple[list[float], float]]],
    rounds: int,
    burst_rounds: int,
) -> str:
    keys = list(turns)
    med = {k: {m: median(v) for m, v in d.items()} for k, d in turns.items()}
    table = Table(["", *keys, "plugin vs SDK"])
    plugin, sdk = turns["plugin"], turns["SDK"]
    ratio = median([p / s for p, s in zip(plugin["turn"], sdk["turn"], strict=True)])
    ahead = median([p - s for p, s in zip(plugin["first"], sdk["first"], strict=True)])
    table.add(
        f"resumed turn, median of {rounds} (ms)",
        *(ms(med[k]["turn"]) for k in keys),
        f"{ratio:.2f}×",
    )
    table.add(
        "resumed turn: first text delta (ms)",
        *(ms(med[k]["first"]) for k in keys),
        f"{ahead * 1000:+.0f} ms",
    )
    for n, row in at_once.items():
        walls = {k: row[k][0] for k in keys}
        ratios = [p / s for p, s in zip(walls["plugin"], walls["SDK"], strict=True)]
        table.add(
            f"{n} agents at once: wall, median of {burst_rounds} (ms)",
            *(ms(median(walls[k])) for k in keys),
            f"{median(ratios):.2f}×",
        )
    largest = max(at_once)
    row = at_once[largest]
    table.add(
        f"peak RSS of the process tree, {largest} agents at once (MiB)",
        *(f"{row[k][1]:.0f}" for k in keys),
        f"{row['plugin'][1] / row['SDK'][1]:.2f}×",
    )
    return table.render()


async def main_async(rounds: int, burst_rounds: int, sizes: list[int], unconfined: bool) -> str:
    with bench_env() as env:
        who = await contenders(env, unconfined, max(sizes))
        try:
            turns = await resumed(env, who, rounds)
            at_once = await bursts(env, who, sizes, burst_rounds)
        finally:
            for contender in who.values():
                await contender.close()
    return report(turns, at_once, rounds, burst_rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="*", default=[4, 16])
    parser.add_argument("--unconfined", action="store_true")
    args = parser.parse_args()
    from plexum_openai_provider._codex.binary import bundled_codex

    started = time.perf_counter()
    print(f"machine: {machine()}; {codex_version(bundled_codex() or 'codex')}\n")
    print(asyncio.run(main_async(args.rounds, args.bursts, args.sizes, args.unconfined)))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
