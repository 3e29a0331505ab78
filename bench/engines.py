"""Turn latency on each engine against bare ``codex exec`` and the official Python SDK, in one run:
first and resumed turns, time to the first text, what offering host tools costs, and a consume.

    python bench/engines.py [--rounds 20]

Every turn's answer is checked. Contenders run interleaved, round by round, in a rotating order.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import BareExec, Env, Plugin, Sdk, Table, bench_env, machine, median, ms

from plexum_openai_provider._bridge.names import mcp_namespace, server_name
from plexum_openai_provider.testing import FunctionCall, Message


async def latency(env: Env, rounds: int) -> dict[str, Any]:
    contenders: dict[str, Any] = {
        "bare": BareExec(env),
        "exec": await Plugin(env, "exec").start(),
        "app": await Plugin(env, "app-server").start(),
        "sdk": await Sdk(env).start(),
    }
    threads: dict[str, tuple[Path, str | None]] = {}
    for key, contender in contenders.items():  # warm-up, and the threads resumed below
        ws = env.workspace()
        timing = await contender.turn(ws, "start", None)
        threads[key] = (ws, timing.thread)
        await contender.turn(ws, "warm", timing.thread)
    out: dict[str, dict[str, list[float]]] = {
        k: {"first": [], "resume": [], "first_text": []} for k in contenders
    }
    keys = list(contenders)
    for i in range(rounds):
        for key in keys[i % len(keys) :] + keys[: i % len(keys)]:
            contender = contenders[key]
            first = await contender.turn(env.workspace(), "hello", None)
            ws, thread = threads[key]
            resumed = await contender.turn(ws, f"again {i}", thread)
            out[key]["first"].append(first.elapsed)
            out[key]["resume"].append(resumed.elapsed)
            out[key]["first_text"].append(resumed.first_text or resumed.elapsed)
    for contender in contenders.values():
        await contender.close()
    return out


async def tool_cost(env: Env, rounds: int) -> dict[str, Any]:
    """A turn offering 5 host tools (none called) against the same turn offering none: the first
    turn of a thread, and a later turn of a thread that had the same tools before."""
    out: dict[str, Any] = {}
    for engine in ("exec", "app-server"):
        plugin = await Plugin(env, engine).start()
        later = {"none": env.workspace(), "tools": env.workspace()}
        threads: dict[str, str | None] = {}
        for kind, ws in later.items():
            timing = await plugin.turn(ws, "warm", None, kind == "tools")
            threads[kind] = timing.thread
        times: dict[str, list[float]] = {
            "first_none": [],
            "first_tools": [],
            "none": [],
            "tools": [],
        }
        for i in range(rounds):
            for kind in ("none", "tools") if i % 2 == 0 else ("tools", "none"):
                tools = kind == "tools"
                times[f"first_{kind}"].append(
                    (await plugin.turn(env.workspace(), "hi", None, tools)).elapsed
                )
                times[kind].append(
                    (await plugin.turn(later[kind], f"again {i}", threads[kind], tools)).elapsed
                )
        await plugin.close()
        out[engine] = times
    return out


async def consume_cost(env: Env, rounds: int) -> dict[str, Any]:
    """A consume of one block in a thread that just ran (on app-server: loaded), and the turn
    after it (on app-server it resumes the thread the consume unloaded)."""
    out: dict[str, Any] = {}
    for engine in ("exec", "app-server"):
        plugin = await Plugin(env, engine).start()
        ws = env.workspace()
        await plugin.turn(ws, "warm", None)
        ns = mcp_namespace(server_name(ws.name))
        consume, after = [], []
        for i in range(rounds):
            call_id = f"c_{engine}_{i}"
            env.server.enqueue(
                FunctionCall("tool_0", "{}", call_id=call_id, namespace=ns),
                Message(f"echo: call {i}"),
            )
            await plugin.turn(ws, f"call {i}", None, True)
            consume.append(await plugin.consume(ws, [call_id]))
            after.append((await plugin.turn(ws, f"after {i}", None, True)).elapsed)
        await plugin.close()
        out[engine] = {"consume": consume, "after": after}
    return out


def report(lat: dict[str, Any], tools: dict[str, Any], consume: dict[str, Any], rounds: int) -> str:
    med = {k: {m: median(v) for m, v in d.items()} for k, d in lat.items()}
    bare = med["bare"]
    table = Table(
        [
            "turn",
            "bare `codex exec` (ms)",
            "plugin, exec (ms)",
            "plugin, app-server (ms)",
            "openai-codex SDK (ms)",
            "exec / bare",
            "app-server / bare",
            "SDK / bare",
        ]
    )
    for metric, label in (
        ("first", "first turn of a new thread"),
        ("resume", "later turn (resumed thread)"),
        ("first_text", "later turn: time to first text"),
    ):
        row = [med[k][metric] for k in ("bare", "exec", "app", "sdk")]
        table.add(
            label,
            *(ms(x) for x in row),
            f"{row[1] / bare[metric]:.2f}",
            f"{row[2] / bare[metric]:.2f}",
            f"{row[3] / bare[metric]:.2f}",
        )
    lines = [
        f"Median of {rounds} turns each, interleaved; every answer checked. The plugin is driven"
        " by a host in a process of its own (the package's host client) and timed there, across"
        " the plugin's protocol; the SDK is driven and timed in a process of its own, with no"
        ' such hop; bare codex by the benchmark. "Time to first text" is when the first piece'
        " of the answer reached the caller: a streamed delta on app-server and the SDK, the"
        " whole message on exec.",
        "",
        table.render(),
        "",
        "Host tools: a turn offering 5 tools (none called) against the same turn offering none"
        " (medians, ms):",
        "",
    ]
    tool_table = Table(
        [
            "engine",
            "first turn: no tools",
            "5 tools",
            "extra",
            "later turn: no tools",
            "5 tools",
            "extra",
        ]
    )
    for engine, times in tools.items():
        m = {k: median(v) for k, v in times.items()}
        tool_table.add(
            engine,
            ms(m["first_none"]),
            ms(m["first_tools"]),
            f"{(m['first_tools'] - m['first_none']) * 1000:+.0f}",
            ms(m["none"]),
            ms(m["tools"]),
            f"{(m['tools'] - m['none']) * 1000:+.0f}",
        )
    lines += [
        tool_table.render(),
        "",
        "Consume of one block right after the turn that made it, and the next turn (medians, ms):",
        "",
    ]
    consume_table = Table(["engine", "consume", "next turn"])
    for engine, times in consume.items():
        consume_table.add(engine, ms(median(times["consume"])), ms(median(times["after"])))
    lines.append(consume_table.render())
    return "\n".join(lines)


async def main_async(rounds: int) -> str:
    with bench_env() as env:
        lat = await latency(env, rounds)
        tools = await tool_cost(env, max(rounds // 2, 3))
        consume = await consume_cost(env, max(rounds // 4, 3))
    return report(lat, tools, consume, rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    print(asyncio.run(main_async(args.rounds)))


if __name__ == "__main__":
    main()
