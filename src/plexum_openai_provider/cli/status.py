"""``plexum-openai-provider-plugin status``: what the user's running plugins are doing.

Asks each plugin of this user through its control socket (see ``plugin/control.py``) and prints
a table: per plugin its codex process, then each agent with a turn running or waiting (the turn,
how long it runs, what it does now, the last line its command printed). ``--json`` prints the
answers as they are, one JSON document, for scripts. ``--account NAME`` limits both to that account
of the config (the plugins that have it; its engine, its admission, the agents on it); a name no
plugin that answered has is an error (exit 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from ..plugin.control import PluginAnswer, ask_all

__all__ = ["for_account", "format_status", "status_command"]

EXIT_USAGE = 2


def _age(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "?"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _mib(value: Any) -> str:
    return f"{value / 2**20:.0f} MiB" if isinstance(value, int) else "?"


def _plugin_line(status: dict[str, Any]) -> str:
    plugin = status.get("plugin") or {}
    line = f"plugin pid {plugin.get('pid')} (v{plugin.get('version')}, up {_age(plugin.get('uptime_s'))})"
    if not status.get("initialized"):
        return line + ": not initialized yet"
    engine = status.get("engine") or {}
    codex = (status.get("codex") or {}).get("version")
    line += f", codex {codex}, engine {engine.get('engine')}"
    process = engine.get("process")
    if isinstance(process, dict):
        line += (
            f": app-server pid {process.get('pid')}, {_mib(process.get('rss_bytes'))},"
            f" up {_age(process.get('uptime_s'))}"
        )
    loaded = engine.get("loaded_threads")
    if isinstance(loaded, list):
        line += f", {len(loaded)} loaded thread{'s' if len(loaded) != 1 else ''}"
    for account in _accounts(status):
        line += (
            f"; account {account.get('account')}: {account.get('running')} running,"
            f" {account.get('waiting')} waiting, limit {account.get('limit')}"
            f" of {account.get('max_concurrent_turns')}"
        )
    return line


def _accounts(status: dict[str, Any]) -> list[dict[str, Any]]:
    admission = status.get("admission")
    accounts = admission.get("accounts") if isinstance(admission, dict) else None
    return [a for a in accounts if isinstance(a, dict)] if isinstance(accounts, list) else []


def for_account(answers: list[PluginAnswer], name: str) -> list[PluginAnswer] | None:
    """The answers limited to account ``name``: each plugin that has it, with only that account,
    its engine and the agents on it (a plugin that did not answer stays: it may have it); None if
    no plugin that answered has it."""
    out: list[PluginAnswer] = []
    found = False
    for answer in answers:
        if answer.status is None:
            out.append(answer)
            continue
        mine = [a for a in _accounts(answer.status) if a.get("account") == name]
        if not mine:
            continue
        found = True
        status = dict(answer.status)
        status["admission"] = {**status["admission"], "accounts": mine}
        agents = status.get("agents")
        status["agents"] = [
            a for a in agents or [] if isinstance(a, dict) and a.get("account") == name
        ]
        engine = mine[0].get("engine")
        if isinstance(engine, dict) and "process" in engine:  # what this account's engine holds
            status["engine"] = {
                "engine": engine.get("name"),
                "process": engine.get("process"),
                "loaded_threads": engine.get("loaded_threads"),
            }
        out.append(PluginAnswer(answer.path, status, None))
    return out if found else None


def format_status(answers: list[PluginAnswer]) -> str:
    if not answers:
        return "no running plugin of this user (no control socket)\n"
    out: list[str] = []
    for answer in answers:
        if answer.status is None:
            out.append(f"{answer.path.name}: {answer.problem}")
            continue
        out.append(_plugin_line(answer.status))
        rows = [("AGENT", "TURN", "FOR", "DOING", "LAST OUTPUT", "QUEUED")]
        for agent in answer.status.get("agents") or []:
            turn = agent.get("turn") or {}
            rows.append(
                (
                    str(agent.get("agent")),
                    str(turn.get("turn_id") or "-"),
                    _age(turn.get("running_s")) if turn else "-",
                    str(turn.get("activity") or "-")[:60],
                    str(turn.get("last_output") or "")[:40],
                    str(len(agent.get("queued") or [])),
                )
            )
        if len(rows) == 1:
            out.append("  no agent is working")
            continue
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            out.append(
                "  "
                + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )
    return "\n".join(out) + "\n"


def status_command(ns: argparse.Namespace) -> int:
    answers = asyncio.run(ask_all())
    if ns.account is not None and answers:
        limited = for_account(answers, ns.account)
        if limited is None:
            names = sorted(
                {str(a.get("account")) for x in answers for a in _accounts(x.status or {})}
            )
            print(
                f"error: no running plugin has account {ns.account!r}"
                f" ({', '.join(names) if names else 'none of them has an account yet'})",
                file=sys.stderr,
            )
            return EXIT_USAGE
        answers = limited
    if ns.json:
        document = [
            {"socket": str(a.path), "status": a.status, "problem": a.problem} for a in answers
        ]
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(format_status(answers))
    return 0 if answers and all(a.status is not None for a in answers) else 1
