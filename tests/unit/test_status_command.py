"""``plexum-openai-provider-plugin status --account NAME``: the answers of the user's plugins
limited to one account (its admission, its engine, the agents on it), and a name no plugin has
refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider.cli import main
from plexum_openai_provider.cli import status as status_cli
from plexum_openai_provider.cli.status import for_account, format_status
from plexum_openai_provider.plugin.control import PluginAnswer


def account(name: str, running: int, pid: int | None) -> dict[str, Any]:
    process = {"pid": pid, "rss_bytes": 300 * 2**20, "uptime_s": 5, "starts": 1} if pid else None
    return {
        "account": name,
        "max_concurrent_turns": 2,
        "limit": 2,
        "running": running,
        "waiting": 0,
        "engine": {
            "name": "app-server",
            "requested": "app-server",
            "fallback_reason": None,
            "process": process,
            "loaded_threads": ["th"] * running,
        },
    }


def agent(name: str, on: str) -> dict[str, Any]:
    turn = {"turn_id": f"t-{name}", "running_s": 3, "activity": "writing", "last_output": None}
    return {"agent": name, "account": on, "turn": turn, "queued": []}


def plugin(pid: int, accounts: list[dict[str, Any]], agents: list[dict[str, Any]]) -> PluginAnswer:
    first = accounts[0]["engine"]
    status = {
        "plugin": {"pid": pid, "version": "0.2.0", "uptime_s": 9},
        "initialized": True,
        "codex": {"version": "0.163.0"},
        "agents": agents,
        # The first account's engine, as the plugin reports it.
        "engine": {
            "engine": first["name"],
            "process": first["process"],
            "loaded_threads": first["loaded_threads"],
        },
        "admission": {"accounts": accounts},
    }
    return PluginAnswer(Path(f"/run/control-{pid}.sock"), status, None)


ANSWERS = [
    plugin(
        100,
        [account("seat-1", 1, 201), account("seat-2", 2, 202)],
        [agent("ada", "seat-1"), agent("bob", "seat-2"), agent("cy", "seat-2")],
    ),
    plugin(110, [account("other", 1, 211)], [agent("dee", "other")]),
    PluginAnswer(Path("/run/control-120.sock"), None, "no plugin answers (Connection refused)"),
]


def test_the_answers_are_limited_to_the_account_its_engine_and_its_agents() -> None:
    limited = for_account(ANSWERS, "seat-2")
    assert limited is not None
    # The plugin without the account is left out; the one that did not answer stays.
    assert [a.path.name for a in limited] == ["control-100.sock", "control-120.sock"]
    status = limited[0].status
    assert status is not None
    assert [a["agent"] for a in status["agents"]] == ["bob", "cy"]
    assert [a["account"] for a in status["admission"]["accounts"]] == ["seat-2"]
    assert status["engine"]["process"]["pid"] == 202  # that account's app-server
    text = format_status(limited)
    assert "app-server pid 202, 300 MiB, up 5s, 2 loaded threads;" in text
    assert "account seat-2: 2 running, 0 waiting, limit 2 of 2" in text
    assert "seat-1" not in text and "ada" not in text
    assert "  bob " in text and "  cy " in text
    assert ANSWERS[0].status is not None and len(ANSWERS[0].status["agents"]) == 3  # untouched
    assert for_account(ANSWERS, "nobody") is None


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    async def ask_all() -> list[PluginAnswer]:
        return ANSWERS[:2]

    monkeypatch.setattr(status_cli, "ask_all", ask_all)
    code = main(["status", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_with_an_account_prints_only_it_and_refuses_a_name_no_plugin_has(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(monkeypatch, capsys)
    assert code == 0 and "account seat-1" in out and "account other" in out
    code, out, _ = run(monkeypatch, capsys, "--account", "other", "--json")
    [answer] = json.loads(out)
    assert code == 0 and [a["agent"] for a in answer["status"]["agents"]] == ["dee"]
    code, out, err = run(monkeypatch, capsys, "--account", "seat-3")
    assert (code, out) == (2, "")
    assert err == "error: no running plugin has account 'seat-3' (other, seat-1, seat-2)\n"
