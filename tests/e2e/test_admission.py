"""One account, many agents, with the real codex and a scripted model that serves two streams at
once (a third gets HTTP 429 ``rate_limit_exceeded``, as the real service answers): every turn
completes, in arrival order, whether the limit is set right or too high; a spent quota stops at
the plugin; a waiting turn cancelled or shut down never reaches codex."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext
from plexum_openai_provider.events import ErrorEvent, Event, Notice, event_to_dict
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import (
    Message,
    ResponsesRequest,
    ScriptedModelServer,
    Wait,
    write_codex_home,
)
from tests.conftest import host_config
from tests.e2e.test_runner import usage_limit_reply
from tests.helpers import texts, wait_until

STREAMS = 2  # what the scripted account serves at once
AGENTS = 6


def asked(request: ResponsesRequest) -> str:
    """The host's message the request carries (a turn sent again ends with codex's "continue")."""
    return next(t for t in request.user_texts() if t.startswith("message "))


def slow_echo(request: ResponsesRequest) -> Message:
    # Each stream lasts 0.5 s: six turns sent at once reach the model within it (with the limit
    # too high, 5 of the 6 first requests were refused in every run, on both engines).
    text = asked(request)
    return Message(f"echo: {text}", deltas=("echo: ", text), delay_s=0.5)


async def agents_at_once(
    plugin: PluginClient, tmp_path: Path, n: int
) -> list[tuple[list[Event], Any]]:
    turns = []
    for i in range(n):
        workspace = tmp_path / f"agent-{i}"
        workspace.mkdir()
        turns.append(
            plugin.start_turn(f"t-{i}", AgentContext(f"agent-{i}", workspace), f"message {i}")
        )

    async def collect(turn: Any) -> tuple[list[Event], Any]:
        return [e async for e in turn], await turn.result()

    return list(await asyncio.gather(*(collect(t) for t in turns)))


def notices(events: list[Event], code: str) -> list[Notice]:
    return [e for e in events if isinstance(e, Notice) and e.code == code]


@pytest.mark.parametrize("limit", [STREAMS, AGENTS])
async def test_agents_at_once_all_complete_whether_the_limit_is_right_or_too_high(
    codex_env: dict[str, str],
    tmp_path: Path,
    model_server: ScriptedModelServer,
    engine: str,
    limit: int,
) -> None:
    model_server.script = slow_echo
    model_server.max_in_flight = STREAMS
    async with await PluginClient.spawn(env=codex_env) as plugin:
        init = await plugin.initialize(host_config(max_concurrent_turns=limit))
        assert init["accounts"][0]["max_concurrent_turns"] == limit
        outcomes = await agents_at_once(plugin, tmp_path, AGENTS)
    for i, (events, result) in enumerate(outcomes):
        assert result.status == "completed", result.error
        assert "".join(texts(events)) == f"echo: message {i}"
        assert not [e for e in events if isinstance(e, ErrorEvent)]
    # No message reached the model twice, whatever was sent again.
    for request in model_server.requests:
        assert sum(t.startswith("message ") for t in request.user_texts()) == 1
    retried = [n for events, _ in outcomes for n in notices(events, "retrying")]
    order = [int(asked(r).split()[1]) for r in model_server.requests]
    print(
        f"{engine}, limit {limit}: {len(model_server.refused)} refused, {len(retried)} retried,"
        f" peak {model_server.peak_in_flight}, order {order}"
    )
    assert model_server.peak_in_flight <= STREAMS
    if limit == STREAMS:
        # The model never saw more than it serves; the turns reached it in the order they came
        # (within the two that run at once); each one that waited was told so, with its place.
        assert model_server.refused == [] and retried == []
        first = [order.index(i) for i in range(AGENTS)]
        assert all(abs(at - i) < STREAMS for i, at in enumerate(first)), order
        for i, (events, _) in enumerate(outcomes):
            waiting = notices(events, "waiting_for_account")
            if i < STREAMS:
                assert waiting == []
            else:
                assert [n.data["place"] for n in waiting if n.data] == [i - STREAMS + 1]
                assert events[0] == waiting[0]
    else:
        # Too high: the account refused some, and each refused turn was sent again, once per 429.
        assert len(model_server.refused) >= 1
        assert len(retried) == len(model_server.refused)
        assert {n.data["reason"] for n in retried if n.data} == {"rate_limited"}


async def test_a_spent_quota_fails_the_next_turn_at_once_without_a_model_request(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    model_server.enqueue(usage_limit_reply())
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        [(_, spent)] = await agents_at_once(plugin, tmp_path, 1)
        assert spent.error is not None and spent.error.code == "usage_limit"
        assert spent.error.retry_after_s is not None
        workspace = tmp_path / "b"
        workspace.mkdir()
        turn = plugin.start_turn("t-b", AgentContext("b", workspace), "message b")
        events = [e async for e in turn]
        result = await turn.result()
    assert len(model_server.requests) == 1
    error = result.error
    assert result.status == "failed" and error is not None
    assert (error.code, error.retryable, error.delivered) == ("usage_limit", True, False)
    assert error.message == spent.error.message
    assert error.retry_after_s is not None and error.retry_after_s <= spent.error.retry_after_s
    assert [e.type for e in events] == ["error"]


async def test_a_waiting_turn_cancelled_or_shut_down_never_reaches_codex(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    release = threading.Event()
    model_server.enqueue(Wait(release, Message("first")))
    agents = []
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        agents.append(AgentContext(name, tmp_path / name))
    try:
        async with await PluginClient.spawn(env=codex_env) as plugin:
            await plugin.initialize(host_config(max_concurrent_turns=1))
            running = plugin.start_turn("t-a", agents[0], "message a")
            await wait_until(lambda: len(model_server.requests) == 1)
            cancelled = plugin.start_turn("t-b", agents[1], "message b")
            shut = plugin.start_turn("t-c", agents[2], "message c")
            seen = [await asyncio.wait_for(anext(aiter(t)), 30) for t in (cancelled, shut)]
            await plugin.cancel("t-b")
            rest = [e async for e in cancelled]
            result = await cancelled.result()
            await plugin.shutdown()
            results = [await running.result(), await shut.result()]
    finally:
        release.set()
    wire = [event_to_dict(e) for e in [seen[0], *rest]]
    print("a waiting turn, cancelled, as the host received it:", wire)
    assert wire == [
        {
            "type": "notice",
            "code": "waiting_for_account",
            "message": "the account runs 1 turn at once; this turn waits for one to end"
            " (1st in line)",
            "data": {"account": "default", "place": 1, "limit": 1, "running": 1},
        },
        {
            "type": "error",
            "code": "cancelled",
            "message": "cancelled by the host",
            "retryable": False,
            "delivered": False,
            "retry_after_s": None,
        },
    ]
    assert seen[1].data is not None and seen[1].data["place"] == 2
    assert result.status == "cancelled"
    assert [r.status for r in results] == ["cancelled", "cancelled"]
    assert len(model_server.requests) == 1  # neither waiting turn reached the model


async def test_the_accounts_rate_limits_reach_the_host_when_codex_reports_them_anew(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    resets = int(time.time()) + 3600
    model_server.rate_limit_headers = {
        "x-codex-primary-used-percent": "42.5",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-at": str(resets),
    }
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config())
        await agents_at_once(plugin, tmp_path, 2)  # two turns, the same report: one notification
        await wait_until(lambda: plugin.rate_limits != [])
    assert plugin.rate_limits == [
        {
            "account": "default",
            "codex_home": codex_env["CODEX_HOME"],
            "rate_limits": {
                "primary": {"used_percent": 42.5, "window_minutes": 300, "resets_at": resets},
                "secondary": None,
                "plan_type": None,
                "reached": None,
            },
        }
    ]


async def test_several_accounts_each_with_its_codex_home_and_its_own_limit(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer, engine: str
) -> None:
    homes = {name: tmp_path / f"home-{name}" for name in ("seat-1", "seat-2")}
    for home in homes.values():
        write_codex_home(home, model_server.base_url)
    accounts = [
        {"name": "seat-1", "codex_home": str(homes["seat-1"]), "max_concurrent_turns": 1},
        {"name": "seat-2", "codex_home": str(homes["seat-2"]), "agents": ["agent-0"]},
    ]
    async with await PluginClient.spawn(env=codex_env) as plugin:
        init = await plugin.initialize(host_config(accounts=accounts))
        assert [(a["account"], a["max_concurrent_turns"]) for a in init["accounts"]] == [
            ("seat-1", 1),
            ("seat-2", 2),
        ]
        outcomes = await agents_at_once(plugin, tmp_path, 3)
    assert [r.status for _, r in outcomes] == ["completed"] * 3
    where = {
        name: sorted(p.name for p in home.rglob("rollout-*.jsonl")) for name, home in homes.items()
    }
    # agent-0 is pinned to seat-2; agent-1 went to seat-1 (both empty: the first), agent-2 to
    # seat-2 (seat-1 was full): each thread lives in its account's CODEX_HOME.
    threads = [r.thread_id for _, r in outcomes]
    assert [sum(t in n for n in where["seat-2"]) for t in threads] == [1, 0, 1]
    assert [sum(t in n for n in where["seat-1"]) for t in threads] == [0, 1, 0]
