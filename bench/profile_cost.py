"""What the agents' permission profile costs codex on a turn that runs no command: codex
app-server's CPU time per plain resumed turn under variants of the policy, their turns
interleaved.

    python bench/profile_cost.py [--turns 60]

* **confined**: the plugin's profile (codex's ``:minimal``, the readable folders, the workspace
  and its ``.git``);
* **system folders named**: ``:minimal`` replaced by the folders it stands for (``/bin /sbin /usr
  /etc /lib /lib64``). A measurement only: codex resolves a named folder to its real path, so on
  a merged-/usr system ``/bin`` and ``/lib64`` (links) are missing in the sandbox and every
  command fails (codex 0.163-0.171); ``:minimal`` binds them as they are. With ``:minimal``
  codex resolves every entry's path again on each turn (~20 ``lstat``/``readlink`` an entry),
  named it does not: this column shows what that costs;
* **no readable folders**: the profile without the daemon's PATH folders;
* **unconfined** (``sandbox: "none"``).

Each provider runs in this process with an app-server of its own; a turn's CPU is its
app-server's (user + system, from ``/proc``) across the turn, and the plugin's own (this
process's) is printed beside it. CPU time moves less with a shared machine's load than wall
time, but it moves: compare the columns of one run, and runs with each other.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from common import Table, bench_env, codex_version, machine, median

from plexum_openai_provider import AgentContext, HostConfig
from plexum_openai_provider._codex.guard import guard
from plexum_openai_provider._codex.policy import PROFILE, AgentPolicy
from plexum_openai_provider.provider import CodexProvider
from plexum_openai_provider.requests import TurnRequest

TICK = os.sysconf("SC_CLK_TCK")
NAMED = ("/bin", "/sbin", "/usr", "/etc", "/lib", "/lib64")


class NamedSystemFolders(AgentPolicy):
    """The agents' profile with ``:minimal`` replaced by the folders it names (see above)."""

    def config(self, *, git_folder: bool = True) -> dict[str, Any]:
        out = super().config(git_folder=git_folder)
        key = f"permissions.{PROFILE}.filesystem"
        filesystem = {k: v for k, v in out[key].items() if k != ":minimal"}
        filesystem.update({folder: "read" for folder in NAMED if os.path.exists(folder)})
        out[key] = filesystem
        return out


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def turn(p: CodexProvider, agent: AgentContext, text: str) -> float:
    start = time.perf_counter()
    handle = await p.start_turn(TurnRequest(agent, text))
    async for _ in handle:
        pass
    result = await handle.result()
    if result.status != "completed":
        raise SystemExit(f"turn {result.status}: {result.error}")
    return time.perf_counter() - start


async def main_async(turns: int) -> str:
    logging.disable(logging.WARNING)
    guard().enable_subreaper()  # as the plugin process is
    with bench_env() as env:
        os.environ.update(env.env)
        who: dict[str, CodexProvider] = {}
        for name, sandbox in [
            ("confined", "workspace"),
            ("system folders named", "workspace"),
            ("no readable folders", "workspace"),
            ("unconfined", "none"),
        ]:
            config = HostConfig(engine="app-server", sandbox=sandbox)
            p = await CodexProvider.create(config, env=env.env)
            if name == "system folders named":
                fields = dataclasses.fields(p.policy)
                p.policy = NamedSystemFolders(**{f.name: getattr(p.policy, f.name) for f in fields})
            elif name == "no readable folders":
                p.policy = dataclasses.replace(p.policy, readable=())
            who[name] = p
        agents = {name: AgentContext(f"a{i}", env.workspace()) for i, name in enumerate(who)}
        for name, p in who.items():
            for i in range(2):
                await turn(p, agents[name], f"warm {i}")
        codex: dict[str, list[float]] = {name: [] for name in who}
        own: dict[str, list[float]] = {name: [] for name in who}
        wall: dict[str, list[float]] = {name: [] for name in who}
        names = list(who)
        for i in range(turns):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                pid = who[name]._engine.pid  # type: ignore[attr-defined]
                before, mine = cpu_s(pid), time.process_time()
                wall[name].append(await turn(who[name], agents[name], f"again {i}"))
                codex[name].append(cpu_s(pid) - before)
                own[name].append(time.process_time() - mine)
        for p in who.values():
            await p.close()
    table = Table(
        ["policy", "codex CPU a turn (ms, mean)", "plugin CPU (ms, mean)", "wall (ms, median)"]
    )
    for name in who:
        table.add(
            name,
            f"{sum(codex[name]) / turns * 1000:.1f}",
            f"{sum(own[name]) / turns * 1000:.1f}",
            f"{median(wall[name]) * 1000:.1f}",
        )
    return table.render()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=60)
    args = parser.parse_args()
    with bench_env() as env:
        version = codex_version(env.codex)
    print(f"machine: {machine()}; {version}\n")
    print(asyncio.run(main_async(args.turns)))


if __name__ == "__main__":
    main()
