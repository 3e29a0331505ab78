"""Models and reasoning efforts the host can pick: what ``initialize`` lists, and what a turn's
``model`` and ``effort`` make codex send the model."""

from __future__ import annotations

import json
from pathlib import Path

from plexum_openai_provider import AgentContext, TextDelta, ToolCall, ToolResult, ToolSpec
from plexum_openai_provider._bridge.names import mcp_namespace, server_name
from plexum_openai_provider.events import event_to_dict
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import (
    FunctionCall,
    Message,
    Reply,
    ResponsesRequest,
    ScriptedModelServer,
)
from tests.conftest import catalog_model, catalog_models, host_config

WEATHER = ToolSpec("get_weather", "The weather of a city", {"type": "object"})


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


async def test_sub_agents_turned_on_report_their_work_as_the_turns_events(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    """codex_features turns multi_agent_v2 on: a sub-agent's text and host tool call reach the
    host as the parent turn's events, marked with the sub-agent (app-server: as they happen;
    exec: from the sub-agent's rollout, when codex's output ends)."""
    ns = mcp_namespace(server_name("cx"))

    def script(request: ResponsesRequest) -> Reply:
        called = [i.get("name") for i in request.items_of_type("function_call")]
        if "SUB-TASK" in request.raw and "spawn_agent" not in called:  # the sub-agent
            if not request.tool_outputs():
                return FunctionCall("get_weather", '{"city": "Oslo"}', "sub_call", ns)
            return Message("SUB-RESULT")
        if "spawn_agent" not in called:
            task = {"task_name": "helper", "message": "SUB-TASK", "fork_turns": "none"}
            return FunctionCall("spawn_agent", json.dumps(task), "spawn", "collaboration")
        if "wait_agent" not in called:
            return FunctionCall("wait_agent", '{"timeout_ms": 30000}', "wait", "collaboration")
        return Message("all done")

    model_server.script = script
    code_mode = catalog_model("code-mode")
    assert code_mode is not None
    config = host_config(
        model_args={"codex": code_mode.id}, codex_features={"multi_agent_v2": True}
    )
    tools = {"get_weather": lambda args: f"sunny in {args['city']}"}
    async with await PluginClient.spawn(env=codex_env, tools=tools) as plugin:
        await plugin.initialize(config)
        turn = plugin.start_turn("t-1", AgentContext("cx", workspace), "go", tools=[WEATHER])
        events = [e async for e in turn]
        assert (await turn.result()).status == "completed"
    mine = [e for e in events if isinstance(e, (ToolCall, ToolResult)) and e.sub_agent is None]
    assert [e.block_id for e in mine if isinstance(e, ToolCall)] == ["spawn", "wait"]
    theirs = [e for e in events if getattr(e, "sub_agent", None) is not None]
    # The output as codex gave it to the sub-agent's model (exec: as recorded, with codex's
    # "Wall time" header; app-server: the tool's own text).
    output = theirs[1].output if isinstance(theirs[1], ToolResult) else ""
    assert output.endswith("sunny in Oslo")
    assert theirs == [
        ToolCall("sub_call", "get_weather", '{"city": "Oslo"}', ns, "/root/helper"),
        ToolResult("sub_call", output, False, "/root/helper"),
        TextDelta("SUB-RESULT", theirs[2].message_id, None, "/root/helper"),
    ]
    assert "all done" in "".join(e.text for e in events if isinstance(e, TextDelta))
    wire = event_to_dict(theirs[0])
    assert wire["sub_agent"] == "/root/helper" and "sub_agent" not in event_to_dict(mine[0])
