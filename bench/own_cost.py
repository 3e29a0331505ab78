"""The plugin's own work per resumed turn, phase by phase: on the fake seam (no codex at all: what
is left is the plugin's), on the real app-server engine (one agent, and N agents at once).

    python bench/own_cost.py [--turns 30] [--burst 16]

The provider runs in this process (no host protocol hop); each phase is timed by a wrapper around
the function that does it. Per phase: the median and the mean per turn (a phase may run more than
once a turn, or take a worker thread's queue). "After codex's end" runs from the moment the
engine says the run is over (``turn/completed`` on app-server) to the turn's result.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import Env, Table, bench_env, machine, median

import plexum_openai_provider._codex.limits as limits
import plexum_openai_provider._engine.app_server.server as app_server_server
import plexum_openai_provider._engine.app_server.threads as app_server
import plexum_openai_provider._turn.runner as runner
import plexum_openai_provider.provider as provider
from plexum_openai_provider import AgentContext, HostConfig
from plexum_openai_provider._codex.guard import guard
from plexum_openai_provider.requests import TurnRequest
from plexum_openai_provider.testing import FakeEngine, FakeRun, exec_lines

TIMES: dict[str, list[float]] = defaultdict(list)
PHASES = [
    ("start_turn", "request → running turn (claim, planning, set-up)"),
    ("claim", "  claim of the workspace (worker thread)"),
    ("plan", "  message planning"),
    ("rollout_start", "rollout offset (worker thread)"),
    ("workspace", "`.git` made a folder, project-instructions check (worker thread)"),
    ("limits", "the agent's cgroup made (event loop)"),
    ("turn/start", "`turn/start` answered (codex's)"),
    ("open_record", "delivery record, open (at TurnStarted, beside the model)"),
    ("after_end", "after codex's end, to the result"),
    ("finish", "  the run's end (what the turn left running)"),
    ("turn_record", "  the rollout's end-of-turn record"),
    ("blocks", "  the turn's blocks (worker thread)"),
    ("closed_record", "  delivery record, closed"),
    ("turn", "the whole turn, as the caller sees it"),
]


def timed(name: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its time added to ``TIMES[name]`` (``name(*args)`` if callable)."""
    label: Callable[..., str] = name if callable(name) else (lambda *a, **k: name)
    if asyncio.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def wrapper_async(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                TIMES[label(*args, **kwargs)].append(time.perf_counter() - start)

        return wrapper_async

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            TIMES[label(*args, **kwargs)].append(time.perf_counter() - start)

    return wrapper


def instrument() -> None:
    provider.claim_workspace = timed("claim", provider.claim_workspace)
    provider.plan_turn = timed("plan", provider.plan_turn)
    runner.rollout_start = timed("rollout_start", runner.rollout_start)
    runner.save_delivery = timed(
        lambda _ws, record: "open_record" if record.open else "closed_record",
        runner.save_delivery,
    )
    runner.Turn._await_turn_record = timed("turn_record", runner.Turn._await_turn_record)
    runner.BlockWatcher.finish = timed("blocks", runner.BlockWatcher.finish)
    app_server.prepare_workspace = timed("workspace", app_server.prepare_workspace)
    limits.Limiter.prepare = timed("limits", limits.Limiter.prepare)  # type: ignore[method-assign]
    request = app_server_server.AppServer.request
    app_server_server.AppServer.request = timed(  # type: ignore[method-assign]
        lambda _self, method, *_args: method, request
    )


def watch_runs(engine: Any, ends: dict[str, float]) -> None:
    """Stamp, per agent's workspace, when the engine says a run is over; time its finish."""
    start_run = engine.start_run

    async def wrapped(spec: Any) -> Any:
        run = await start_run(spec)
        next_event, ready, finish = run.next_event, run.ready, run.finish

        def stamped(event: Any) -> Any:
            if event is None:
                ends[str(spec.workspace)] = time.perf_counter()
            return event

        async def next_event_stamped() -> Any:
            return stamped(await next_event())

        run.next_event = next_event_stamped
        run.ready = lambda: stamped(ready())
        run.finish = timed("finish", finish)
        return run

    engine.start_run = wrapped


async def turn(p: provider.CodexProvider, agent: AgentContext, text: str, ends: dict[str, float]):
    start = time.perf_counter()
    handle = await p.start_turn(TurnRequest(agent, text))
    TIMES["start_turn"].append(time.perf_counter() - start)
    async for _ in handle:
        pass
    result = await handle.result()
    end = time.perf_counter()
    if result.status != "completed":
        raise SystemExit(f"turn {result.status}: {result.error}")
    TIMES["turn"].append(end - start)
    if str(agent.workspace) in ends:
        TIMES["after_end"].append(end - ends.pop(str(agent.workspace)))


def snapshot(turns: int) -> dict[str, tuple[float, float]]:
    out = {k: (median(v), sum(v) / turns) for k, v in TIMES.items() if v}
    TIMES.clear()
    return out


async def on_fake_seam(env: Env, turns: int) -> dict[str, tuple[float, float]]:
    thread = "019a0000-0000-7000-8000-000000000001"
    runs = [FakeRun(exec_lines.turn(thread, f"echo {i}")) for i in range(turns + 2)]
    engine = FakeEngine(runs)
    ends: dict[str, float] = {}
    watch_runs(engine, ends)
    p = provider.CodexProvider(
        HostConfig(), engine, env=env.env, lock_dir=Path(env.env["PLEXUM_LOCK_DIR"])
    )
    agent = AgentContext("fake", env.workspace())
    for i in range(2):
        await turn(p, agent, f"warm {i}", ends)
    TIMES.clear()
    for i in range(turns):
        await turn(p, agent, f"again {i}", ends)
    await p.close()
    return snapshot(turns)


async def on_app_server(env: Env, turns: int, burst: int) -> list[dict[str, tuple[float, float]]]:
    p = await provider.CodexProvider.create(HostConfig(engine="app-server"), env=env.env)
    assert p.policy.confined, p.policy
    ends: dict[str, float] = {}
    watch_runs(p._engine, ends)
    agent = AgentContext("one", env.workspace())
    for i in range(2):
        await turn(p, agent, f"warm {i}", ends)
    TIMES.clear()
    for i in range(turns):
        await turn(p, agent, f"again {i}", ends)
    out = [snapshot(turns)]
    agents = [AgentContext(f"b{i}", env.workspace()) for i in range(burst)]
    await asyncio.gather(*(turn(p, a, "first", ends) for a in agents))
    TIMES.clear()
    rounds = max(turns // burst, 3)
    for r in range(rounds):
        await asyncio.gather(*(turn(p, a, f"at once {r}", ends) for a in agents))
    out.append(snapshot(rounds * burst))
    await p.close()
    return out


def report(columns: list[tuple[str, dict[str, tuple[float, float]]]]) -> str:
    table = Table(["phase (ms)", *(f"{title}: median / mean" for title, _ in columns)])
    for key, label in PHASES:
        cells = []
        for _, data in columns:
            m = data.get(key)
            cells.append("–" if m is None else f"{m[0] * 1000:.2f} / {m[1] * 1000:.2f}")
        table.add(label, *cells)
    return table.render()


async def main_async(turns: int, burst: int) -> str:
    logging.disable(logging.WARNING)  # the fake seam's turns have no rollout to read usage from
    guard().enable_subreaper()  # as the plugin process is
    instrument()
    with bench_env() as env:
        os.environ.update(env.env)  # codex's and the plugin's folders: the benchmark's own
        fake = await on_fake_seam(env, turns)
        one, many = await on_app_server(env, turns, burst)
    return (
        f"The plugin's own work on a resumed turn, {turns} turns (in-process, no host hop):\n\n"
        + report([("fake seam", fake), ("app-server", one), (f"app-server, {burst} at once", many)])
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--burst", type=int, default=16)
    args = parser.parse_args()
    print(f"machine: {machine()}\n")
    print(asyncio.run(main_async(args.turns, args.burst)))


if __name__ == "__main__":
    main()
