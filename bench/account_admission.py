"""Many agents, one account: N agents start a turn at once against a scripted model that serves K
streams at a time (a request beyond K gets HTTP 429 ``rate_limit_exceeded``, as the real service
answers an account past its concurrent streams).

    python bench/account_admission.py [--agents 16] [--streams 3] [--engine app-server]
        [--before /path/to/an/older/src]

Cases: ``max_concurrent_turns`` set to K, left unset (its default), and set too high (N: the
plugin adapts); ``--before`` adds the plugin of another checkout (its ``src``) with its defaults.
Reported per case: turns completed and failed (by code), how many times turns were sent again
(``retrying`` notices), the most requests the model answered at once and how many it refused,
the wall time until the last turn ended against the ideal (N / K x one turn alone, measured just
before on the same plugin), and the longest wait (from a turn's start to the model request that
answered it). codex's own retries are off (``request_max_retries = 0``), as in the tests: what is
measured is what the plugin does with a 429.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import Table, bench_env, machine

from plexum_openai_provider import AgentContext
from plexum_openai_provider.events import ErrorEvent, Notice
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import (
    Message,
    ResponsesRequest,
)

SRC = Path(__file__).resolve().parent.parent / "src"


def asked(request: ResponsesRequest) -> str:
    return next((t for t in request.user_texts() if t.startswith("turn ")), "")


def slow_echo(request: ResponsesRequest) -> Message:
    """A model answer that takes about a second to stream, so that turns overlap."""
    text = asked(request)
    return Message(f"echo: {text}", deltas=("echo: ", text), delay_s=1.0)


async def one_turn(plugin: PluginClient, root: Path, name: str) -> tuple[float, Any, list[Any]]:
    workspace = root / name
    workspace.mkdir()
    start = time.perf_counter()
    handle = plugin.start_turn(name, AgentContext(name, workspace), f"turn {name}")
    events = [e async for e in handle]
    result = await handle.result()
    return time.perf_counter() - start, result, events


async def run_case(
    label: str, src: Path, config: dict[str, Any], agents: int, streams: int, engine: str
) -> list[object]:
    with bench_env(slow_echo, max_in_flight=streams) as bench:
        server, root = bench.server, bench.root
        env = {**bench.env, "PYTHONPATH": str(src)}
        async with await PluginClient.spawn(env=env) as plugin:
            await plugin.initialize({"engine": engine, **config})
            alone, _, _ = await one_turn(plugin, root, "alone")
            server.requests.clear()
            server.peak_in_flight = 0
            started = time.monotonic()
            wall_start = time.perf_counter()
            outcomes = await asyncio.gather(
                *(one_turn(plugin, root, f"a{i}") for i in range(agents))
            )
            wall = time.perf_counter() - wall_start
    answered = {asked(r): r.received_at for r in server.requests}  # the last request of each
    longest = max((at - started for at in answered.values()), default=0.0)
    codes = Counter(r.error.code for _, r, _ in outcomes if r.status != "completed" and r.error)
    retried = sum(
        1 for _, _, ev in outcomes for e in ev if isinstance(e, Notice) and e.code == "retrying"
    )
    errors = sum(1 for _, _, ev in outcomes for e in ev if isinstance(e, ErrorEvent))
    completed = sum(r.status == "completed" for _, r, _ in outcomes)
    ideal = agents / streams * alone
    failed = ", ".join(f"{n} {code}" for code, n in codes.items()) or "0"
    assert errors == sum(codes.values())
    return [
        label,
        f"{completed}/{agents}",
        failed,
        retried,
        f"{server.peak_in_flight} (refused {len(server.refused)})",
        f"{wall:.1f} s",
        f"{ideal:.1f} s ({alone:.2f} s x {agents}/{streams})",
        f"{wall / ideal:.2f}",
        f"{longest:.1f} s",
    ]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--engine", default="app-server")
    parser.add_argument("--before", type=Path, help="the src folder of another checkout")
    args = parser.parse_args()
    n, k = args.agents, args.streams
    cases: list[tuple[str, Path, dict[str, Any]]] = []
    if args.before is not None:
        cases.append(("before (no admission)", args.before, {}))
    cases += [
        (f"max_concurrent_turns {k} (set right)", SRC, {"max_concurrent_turns": k}),
        ("max_concurrent_turns unset (default 2)", SRC, {}),
        (f"max_concurrent_turns {n} (too high: adapts)", SRC, {"max_concurrent_turns": n}),
    ]
    table = Table(
        [
            "plugin",
            "completed",
            "failed",
            "sent again",
            "peak at the model",
            "wall",
            "ideal",
            "wall / ideal",
            "longest wait",
        ]
    )
    for label, src, config in cases:
        print(f"running {label} …", file=sys.stderr)
        table.add(*await run_case(label, src, config, n, k, args.engine))
    print(f"machine: {machine()}")
    print(
        f"{n} agents start a turn at once, {args.engine} engine; the scripted model serves {k}"
        " streams at a time (429 beyond), each answer streaming for about 1 s.\n"
    )
    print(table.render())


if __name__ == "__main__":
    asyncio.run(main())
