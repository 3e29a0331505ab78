"""The accounts a provider runs turns on (``_turn/accounts.py``), made from the config: each one's
CODEX_HOME and limit, what codex reports of its rate limits, and where an agent's thread is found
when its assignment was lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plexum_openai_provider import HostConfig
from plexum_openai_provider._codex.login import LoginState
from plexum_openai_provider._engine.select import EngineInfo
from plexum_openai_provider._turn.accounts import Accounts, StartedAccount
from plexum_openai_provider.testing import FakeEngine

THREAD = "01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1"
EXEC = EngineInfo("exec", "exec")


def started(*names_and_logins: tuple[str, Any]) -> list[StartedAccount]:
    return [(name, FakeEngine([]), EXEC, LoginState(True, how)) for name, how in names_and_logins]


def test_each_account_gets_its_home_and_its_limit_its_own_else_the_configs_else_its_logins(
    tmp_path: Path,
) -> None:
    config = HostConfig.parse(
        {
            "accounts": [
                {"name": "seat", "codex_home": str(tmp_path / "seat"), "max_concurrent_turns": 3},
                {"name": "key", "codex_home": str(tmp_path / "key"), "agents": ["p"]},
            ]
        }
    )
    env = {"CODEX_HOME": str(tmp_path / "env"), "HOME": str(tmp_path)}
    accounts = Accounts.configured(
        config, env, started(("seat", "chatgpt"), ("key", "api_key")), tmp_path, print
    )
    seat, key = accounts.all
    assert (seat.codex_home, seat.env["CODEX_HOME"]) == (tmp_path / "seat", str(tmp_path / "seat"))
    assert [a["max_concurrent_turns"] for a in accounts.snapshots()] == [3, 16]
    assert accounts.of("p") is key  # pinned
    one = Accounts.configured(
        HostConfig.parse({"max_concurrent_turns": 5}), env, started(("default", None)), None, print
    )
    assert one.default.codex_home == tmp_path / "env" and one.default.admission.limit == 5


def test_what_codex_reports_of_an_accounts_rate_limits_is_handed_on_with_its_name_and_home(
    tmp_path: Path,
) -> None:
    told: list[dict[str, Any]] = []
    env = {"CODEX_HOME": str(tmp_path / "env")}
    accounts = Accounts.configured(HostConfig(), env, started(("default", None)), None, told.append)
    limits = {"primary": {"used_percent": 42.5}, "secondary": None}
    accounts.default.admission.reported(limits)
    assert told == [
        {"account": "default", "codex_home": str(tmp_path / "env"), "rate_limits": limits}
    ]


def test_a_thread_is_looked_for_in_the_agents_account_first_then_in_every_other(
    tmp_path: Path,
) -> None:
    homes = {name: tmp_path / name for name in ("one", "two")}
    config = HostConfig.parse(
        {"accounts": [{"name": n, "codex_home": str(h)} for n, h in homes.items()]}
    )
    day = homes["two"] / "sessions" / "2026" / "01" / "02"
    day.mkdir(parents=True)
    rollout = day / f"rollout-2026-01-02T03-04-05-{THREAD}.jsonl"
    rollout.write_text("{}\n")
    accounts = Accounts.configured(
        config, {}, started(("one", None), ("two", None)), tmp_path, print
    )
    # An agent with no account here (its assignment was lost): its thread is where it was.
    assert accounts.known("lost") is None
    found = accounts.find_thread("lost", THREAD)
    assert found is not None and (found[0].name, found[1]) == ("two", rollout)
    assert accounts.known("lost") is None  # looking assigns nothing
    assert accounts.find_thread("lost", "01a20aa4-0000-7f40-9ba8-8bc39951a3e1") is None
