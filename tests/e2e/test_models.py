"""Models and reasoning efforts the host can pick: what ``initialize`` lists, and what a turn's
``model`` and ``effort`` make codex send the model."""

from __future__ import annotations

from pathlib import Path

from plexum_openai_provider import AgentContext
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import ScriptedModelServer
from tests.conftest import catalog_models, host_config


async def test_initialize_lists_codex_models_and_a_turn_takes_a_model_and_effort(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    agent = AgentContext("cx", workspace)
    config = host_config(
        supported_models=["codex", "deep"],
        model_args={"deep": {"model": "gpt-5.5", "effort": "xhigh"}},
    )
    async with await PluginClient.spawn(env=codex_env) as plugin:
        init = await plugin.initialize(config)
        assert init["models"] == [{"id": "codex"}, {"id": "deep"}]
        listed = {m["id"]: m for m in init["codex_models"]}
        assert list(listed) == [m.id for m in catalog_models()]  # codex's order: its default first
        assert listed["gpt-5.5"] == {
            "id": "gpt-5.5",
            "display_name": "GPT-5.5",
            "description": listed["gpt-5.5"]["description"],
            "efforts": ["low", "medium", "high", "xhigh"],
            "default_effort": "medium",
            "code_mode": False,
        }
        assert any(m["code_mode"] for m in init["codex_models"])
        asked = [
            ("deep", None),  # the operator's default effort for it
            ("deep", "low"),
            ("gpt-5.5", "high"),  # a model codex lists, by its own name
            ("deep", None),  # back to the default: not the last turn's effort
        ]
        for n, (model, effort) in enumerate(asked):
            turn = plugin.start_turn(f"t-{n}", agent, "hi", model=model, effort=effort)
            assert (await turn.result()).status == "completed"
    sent = [
        (r.body.get("model"), (r.body.get("reasoning") or {}).get("effort"))
        for r in model_server.requests
    ]
    assert sent == [
        ("gpt-5.5", "xhigh"),
        ("gpt-5.5", "low"),
        ("gpt-5.5", "high"),
        ("gpt-5.5", "xhigh"),
    ]
