"""The runner end to end: the real codex binary against the scripted model server."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from pathlib import Path

import pytest

from plexum_openai_provider import (
    AgentBusyError,
    AgentContext,
    CodexProvider,
    ConfigError,
    ErrorEvent,
    Event,
    HostConfig,
    InvalidRequestError,
    Notice,
    TextDelta,
    TurnRequest,
    TurnResult,
    Usage,
)
from plexum_openai_provider._turn.thread_store import SESSION_FILE
from plexum_openai_provider.testing import (
    Failed,
    FunctionCall,
    Hang,
    HttpError,
    Message,
    ScriptedModelServer,
    write_codex_home,
)
from plexum_openai_provider.testing import Usage as WireUsage
from tests.conftest import OPEN_PROVIDERS, host_config, records_of
from tests.helpers import (
    codex_processes,
    processes_matching,
    texts,
    unique_sleep,
    wait_until,
)

# codex warns once per turn that the scripted model has no metadata; it is a notice, not a failure.
METADATA_WARNING = Notice(
    "codex_warning",
    "Model metadata for `scripted-model` not found. Defaulting to fallback metadata; this can"
    " degrade performance and cause issues.",
)


async def make_provider(env: dict[str, str], **config: object) -> CodexProvider:
    provider = await CodexProvider.create(HostConfig.parse(host_config(**config)), env=env)
    OPEN_PROVIDERS.append(provider)
    return provider


async def run_turn(
    provider: CodexProvider, workspace: Path, prompt: str, **kw: object
) -> tuple[list[Event], TurnResult]:
    turn = await provider.start_turn(TurnRequest(AgentContext("cx", workspace), prompt, **kw))  # type: ignore[arg-type]
    events = [event async for event in turn]
    return events, await turn.result()


def without_warning(events: list[Event]) -> list[Event]:
    """codex 0.163+ warns about the scripted model's metadata on every turn; 0.136 does not."""
    return [e for e in events if e != METADATA_WARNING]


async def test_first_turn_streams_text_and_stores_thread(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    provider = await make_provider(codex_env)
    events, result = await run_turn(provider, workspace, "hello")

    [text, usage] = without_warning(events)
    assert isinstance(text, TextDelta) and text.text == "echo: hello" and text.message_id
    assert usage == Usage(100, 0, 10, 0)
    assert result.status == "completed" and result.error is None
    assert result.usage == Usage(100, 0, 10, 0)
    assert (records_of(codex_env, workspace) / SESSION_FILE).read_text() == f"{result.thread_id}\n"
    assert [r.last_user_text() for r in model_server.requests] == ["hello"]


async def test_second_turn_resumes_the_thread(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    provider = await make_provider(codex_env)
    model_server.enqueue(Message("the first answer"))
    _, first = await run_turn(provider, workspace, "first question")
    events, second = await run_turn(provider, workspace, "second question")

    assert second.thread_id == first.thread_id
    assert "echo: second question" in texts(events)
    request = model_server.requests[-1]
    assert request.user_texts()[-2:] == ["first question", "second question"]
    assert "the first answer" in request.assistant_texts()


async def test_usage_is_per_turn_not_the_running_total(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    provider = await make_provider(codex_env)
    figures = [WireUsage(100, 0, 10, 0), WireUsage(250, 50, 20, 7), WireUsage(40, 30, 5, 1)]
    usages = []
    for i, wire in enumerate(figures):
        model_server.usage = wire
        events, result = await run_turn(provider, workspace, f"turn {i}")
        assert result.status == "completed"
        usage_events = [e for e in events if isinstance(e, Usage)]
        assert usage_events == [result.usage]
        usages.append(result.usage)
    assert usages == [
        Usage(w.input_tokens, w.cached_input_tokens, w.output_tokens, w.reasoning_output_tokens)
        for w in figures
    ]


async def test_usage_of_a_turn_with_two_model_requests_adds_them(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    provider = await make_provider(codex_env)
    model_server.enqueue(
        FunctionCall("exec_command", json.dumps({"cmd": "echo tool-ran"})), Message("done")
    )
    events, result = await run_turn(provider, workspace, "use the shell")
    assert result.usage == Usage(200, 0, 20, 0)
    [output] = model_server.requests[1].items_of_type("function_call_output")
    assert "Process exited with code 0" in output["output"] and "tool-ran" in output["output"]
    # The shell call's block came live, as the call completed, before the answer.
    kinds = [type(e).__name__ for e in without_warning(events)]
    assert kinds == ["ToolCall", "ToolResult", "TextDelta", "Usage"]
    assert "done" in texts(events)


async def test_each_message_of_a_turn_has_its_id_and_phase(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, engine: str
) -> None:
    provider = await make_provider(codex_env)
    model_server.enqueue(
        [
            Message("Let me check the file…", phase="commentary"),
            FunctionCall("exec_command", json.dumps({"cmd": "echo checked"})),
        ],
        Message("It says hi.", deltas=("It ", "says hi."), phase="final_answer"),
    )
    events, result = await run_turn(provider, workspace, "what does it say?")
    assert result.status == "completed"
    deltas = [e for e in events if isinstance(e, TextDelta)]
    messages: dict[str, list[TextDelta]] = {}
    for delta in deltas:
        messages.setdefault(delta.message_id, []).append(delta)
    assert ["".join(d.text for d in m) for m in messages.values()] == [
        "Let me check the file…",
        "It says hi.",
    ]
    phases = [{d.phase for d in m} for m in messages.values()]
    # app-server says which message is the answer; `codex exec --json` does not.
    if engine == "app-server":
        assert phases == [{"commentary"}, {"final_answer"}]
    else:
        assert phases == [{None}, {None}]
    # The interim message came before the command's block, the answer after it.
    kinds = [type(e).__name__ for e in without_warning(events)]
    assert kinds[0] == "TextDelta" and kinds[-1] == "Usage"
    assert kinds.index("ToolCall") < kinds.index("TextDelta", 1)


def usage_limit_reply() -> HttpError:
    # The model says when the limit resets; codex words it as a local time, to the minute.
    resets_at = int(time.time()) + 3725
    body = {"error": {"type": "usage_limit_reached", "message": "limit", "resets_at": resets_at}}
    return HttpError(429, json.dumps(body))


FAILURES = {
    # id: (the model's reply, the code, retryable, a piece of the message)
    "http-500": (HttpError(500), "codex_failed", True, "high demand"),
    "response-failed": (Failed("the model broke"), "codex_failed", True, "the model broke"),
    "401": (
        HttpError(401, '{"error": {"message": "Incorrect API key provided"}}'),
        "unauthorized",
        False,
        "plexum-openai-provider-plugin login",
    ),
    "429-rate": (
        HttpError(429, '{"error": {"message": "Rate limit reached", "type": "requests"}}'),
        "rate_limited",
        True,
        "429 Too Many Requests",
    ),
    "429-usage": (usage_limit_reply, "usage_limit", True, "hit your usage limit"),
    "503": (
        HttpError(503, '{"error": {"message": "overloaded", "code": "server_is_overloaded"}}'),
        "overloaded",
        True,
        "at capacity",
    ),
    "context": (
        Failed("Your input exceeds the context window.", code="context_length_exceeded"),
        "context_window_exceeded",
        False,
        "session/consume",
    ),
}


@pytest.mark.parametrize("case", list(FAILURES))
async def test_a_failing_model_fails_the_turn_with_an_error_the_host_can_act_on(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, case: str
) -> None:
    reply, code, retryable, needle = FAILURES[case]
    # The plugin sends a throttled turn again itself (tests/e2e/test_admission.py): not here.
    provider = await make_provider(codex_env, max_turn_retries=0)
    model_server.enqueue(reply() if callable(reply) else reply)  # type: ignore[arg-type]
    events, result = await run_turn(provider, workspace, "hi")

    assert result.status == "failed"
    error = result.error
    assert error is not None and (error.code, error.retryable) == (code, retryable), error
    assert needle in error.message
    assert error.delivered  # codex took the message: a retry must not send it again
    if case == "429-usage":
        assert error.retry_after_s is not None and 3725 - 120 < error.retry_after_s <= 3725
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert errors == [
        ErrorEvent(
            code, error.message, retryable, delivered=True, retry_after_s=error.retry_after_s
        )
    ]
    assert not any(isinstance(e, Usage) for e in events)
    # The thread was created before the failure: it is kept for the next turn.
    assert (records_of(codex_env, workspace) / SESSION_FILE).read_text().strip() == result.thread_id


async def test_hanging_model_ends_by_idle_timeout_and_leaves_no_process(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, codex_home: Path
) -> None:
    provider = await make_provider(codex_env, idle_timeout_s=1.5)
    model_server.enqueue(Hang())
    turn = await provider.start_turn(TurnRequest(AgentContext("cx", workspace), "hi"))
    events = [e async for e in turn]
    result = await turn.result()

    assert result.status == "failed"
    assert result.error is not None and result.error.code == "timeout"
    assert "idle_timeout_s=1.5" in result.error.message
    # codex had the message (it asked the model): a retry must not send it again.
    assert ErrorEvent("timeout", result.error.message, True, delivered=True) in events
    await provider.close()
    assert codex_processes(codex_home) == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("model", ["closed port", "stalled stream"])
async def test_a_model_that_stays_unreachable_fails_the_turn_in_bounded_time(
    codex_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
    model: str,
) -> None:
    """A port nothing listens on (codex: "Reconnecting... waiting for network", without end) and
    a model that stops answering mid-stream (codex: "Reconnecting... N/100", a stalled stream
    retried): the turn fails model_unreachable after unreachable_timeout_s, though codex still
    speaks; idle_timeout_s and turn_timeout_s are far away."""
    if model == "closed port":
        write_codex_home(codex_home, f"http://127.0.0.1:{_closed_port()}/v1")
        last = "Reconnecting... waiting for network"
    else:
        stall = Message("never", deltas=("", "never"), delay_s=3600)
        model_server.enqueue(*[stall] * 100)
        config = codex_home / "config.toml"
        config.write_text(
            config.read_text().replace("stream_max_retries = 0", "stream_max_retries = 100")
            + "stream_idle_timeout_ms = 300\n"
        )
        last = "Reconnecting... "
    provider = await make_provider(
        codex_env, unreachable_timeout_s=2, idle_timeout_s=60, turn_timeout_s=120
    )
    started = time.monotonic()
    events, result = await run_turn(provider, workspace, "hi")
    took = time.monotonic() - started
    assert result.status == "failed" and result.error is not None, result
    assert (result.error.code, result.error.retryable) == ("model_unreachable", True)
    assert result.error.message.startswith(
        "codex could not reach the model; it was stopped after unreachable_timeout_s=2 s of"
        f" reconnecting (codex's last message: {last}"
    )
    assert 2 <= took < 15, took
    assert events[-1] == ErrorEvent("model_unreachable", result.error.message, True, True)
    await provider.close()
    assert codex_processes(codex_home) == []


async def test_a_command_that_prints_nothing_for_longer_than_idle_timeout_is_not_idle(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    provider = await make_provider(codex_env, idle_timeout_s=1)
    build = {"cmd": "sleep 1.8; echo built", "yield_time_ms": 20000}
    model_server.enqueue(FunctionCall("exec_command", json.dumps(build)), Message("it built"))
    events, result = await run_turn(provider, workspace, "build it")
    assert result.status == "completed", result.error
    assert "it built" in texts(events)
    [output] = model_server.requests[1].items_of_type("function_call_output")
    assert "built" in output["output"]


async def test_turn_timeout_ends_a_turn_that_keeps_printing(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    provider = await make_provider(codex_env, turn_timeout_s=2, idle_timeout_s=60)
    model_server.enqueue(Hang())
    _events, result = await run_turn(provider, workspace, "hi")
    assert result.error is not None and result.error.code == "timeout"
    assert "turn_timeout_s=2" in result.error.message


async def test_cancel_mid_tool_leaves_no_process(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, codex_home: Path
) -> None:
    marker = unique_sleep(300)
    model_server.enqueue(FunctionCall("exec_command", json.dumps({"cmd": marker})))
    model_server.enqueue(Message("never reached"))
    provider = await make_provider(codex_env)
    turn = await provider.start_turn(
        TurnRequest(AgentContext("cx", workspace), "run a long command")
    )
    await wait_until(lambda: bool(processes_matching(marker)))
    turn.cancel()
    events = [e async for e in turn]
    result = await turn.result()

    assert result.status == "cancelled"
    assert result.error is not None and result.error.code == "cancelled"
    assert ErrorEvent("cancelled", result.error.message, False, delivered=True) in events
    assert processes_matching(marker) == []
    # The thread id is kept: the next turn resumes it.
    assert (records_of(codex_env, workspace) / SESSION_FILE).read_text().strip() == result.thread_id
    _, after = await run_turn(provider, workspace, "again")
    assert after.thread_id == result.thread_id and after.status == "completed"
    await provider.close()
    assert codex_processes(codex_home) == []


async def test_cancel_while_waiting_for_the_model(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, codex_home: Path
) -> None:
    model_server.enqueue(Hang())
    provider = await make_provider(codex_env)
    turn = await provider.start_turn(TurnRequest(AgentContext("cx", workspace), "hi"))
    await wait_until(lambda: len(model_server.requests) == 1)
    turn.cancel()
    result = await turn.result()
    assert result.status == "cancelled"
    await provider.close()
    assert codex_processes(codex_home) == []


PROMPTS = {
    "dash": "-x not a flag",
    "double-dash": "--help",
    "lone-dash": "-",
    "newlines": "line one\n\n  line three\n",
    "quotes": 'it\'s "quoted" `and` $(not run) \\ back',
    "non-ascii": "héllo wörld — 你好 🚀",
    "large": "".join(f"{i:07d} lorem ipsum dolor sit amet\n" for i in range(7000)),  # ~245 KiB
}


async def test_prompt_reaches_the_model_byte_for_byte(
    codex_env: dict[str, str], tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    # One provider, each prompt the first turn of an agent of its own.
    provider = await make_provider(codex_env)
    for name, prompt in PROMPTS.items():
        workspace = tmp_path / name
        workspace.mkdir()
        model_server.enqueue(Message("ok"))
        turn = await provider.start_turn(TurnRequest(AgentContext(name, workspace), prompt))
        result = await turn.result()
        assert result.status == "completed", (name, result)
        assert model_server.requests[-1].last_user_text() == prompt, name
    assert len(model_server.requests) == len(PROMPTS)


async def test_ten_mib_agent_message_arrives_whole(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    big = "".join(f"{i:09d}\n" for i in range(1024 * 1024))  # 10 MiB
    model_server.enqueue(Message(big))
    provider = await make_provider(codex_env)
    events, result = await run_turn(provider, workspace, "a big answer please")
    assert result.status == "completed"
    texts = [e for e in events if isinstance(e, TextDelta)]
    assert len(texts) == 1 and texts[0].text == big


async def test_stale_thread_id_gives_notice_and_a_fresh_thread(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    stale = str(uuid.uuid4())
    (records_of(codex_env, workspace) / SESSION_FILE).write_text(stale + "\n")
    provider = await make_provider(codex_env)
    events, result = await run_turn(provider, workspace, "are you there")

    assert result.status == "completed" and result.thread_id not in (None, stale)
    notices = [e for e in events if isinstance(e, Notice) and e.code == "resume_failed"]
    assert len(notices) == 1 and stale in notices[0].message
    assert (records_of(codex_env, workspace) / SESSION_FILE).read_text() == f"{result.thread_id}\n"
    # The prompt reached the model once, in a new thread.
    assert [r.last_user_text() for r in model_server.requests] == ["are you there"]


async def test_garbage_in_the_session_file_gives_notice_and_a_fresh_thread(
    codex_env: dict[str, str], workspace: Path
) -> None:
    (records_of(codex_env, workspace) / SESSION_FILE).write_text("--last\n")
    provider = await make_provider(codex_env)
    events, result = await run_turn(provider, workspace, "hi")
    assert result.status == "completed"
    assert any(isinstance(e, Notice) and e.code == "resume_failed" for e in events)
    assert (records_of(codex_env, workspace) / SESSION_FILE).read_text() == f"{result.thread_id}\n"


async def test_codex_exiting_without_a_turn_reports_its_stderr(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer, engine: str
) -> None:
    if engine == "app-server":
        # `codex app-server` has no such option: refused at once, naming the key.
        with pytest.raises(ConfigError) as err:
            await make_provider(codex_env, extra_args=["--no-such-flag"])
        assert err.value.key == "extra_args" and "--no-such-flag" in err.value.message
        return
    provider = await make_provider(codex_env, extra_args=["--no-such-flag"])
    events, result = await run_turn(provider, workspace, "hi")
    assert result.status == "failed"
    assert result.error is not None and result.error.code == "codex_exited"
    assert "--no-such-flag" in result.error.message
    assert events == [ErrorEvent("codex_exited", result.error.message, retryable=True)]
    assert model_server.requests == []


async def test_model_args_choose_the_model(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    provider = await make_provider(
        codex_env, supported_models=["codex", "big"], model_args={"big": "gpt-big-test"}
    )
    assert provider.models == ["codex", "big"]
    await run_turn(provider, workspace, "default model")
    await run_turn(provider, workspace, "big model", model="big")
    assert [r.body["model"] for r in model_server.requests] == ["scripted-model", "gpt-big-test"]
    with pytest.raises(InvalidRequestError) as err:
        await provider.start_turn(TurnRequest(AgentContext("cx", workspace), "x", model="gpt-9"))
    assert err.value.field == "model" and "gpt-9" in err.value.message


async def test_second_turn_for_a_busy_agent_is_refused(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    model_server.enqueue(Hang())
    provider = await make_provider(codex_env)
    turn = await provider.start_turn(TurnRequest(AgentContext("cx", workspace), "one"))
    await wait_until(lambda: len(model_server.requests) == 1)
    with pytest.raises(AgentBusyError):
        await provider.start_turn(TurnRequest(AgentContext("cx", workspace), "two"))
    turn.cancel()
    assert (await turn.result()).status == "cancelled"
    # Free again once the turn has ended.
    _, result = await run_turn(provider, workspace, "three")
    assert result.status == "completed"


INVALID_AGENTS = [
    (AgentContext("cx", Path("relative/ws")), "agent.workspace"),
    (AgentContext("cx", Path("/nonexistent/plexum/ws")), "agent.workspace"),
    (AgentContext("", Path("/tmp")), "agent.id"),
    (AgentContext("a\nb", Path("/tmp")), "agent.id"),
    (AgentContext("x" * 500, Path("/tmp")), "agent.id"),
]


# Refused before an engine is asked for anything: one engine proves it.
@pytest.mark.one_engine
async def test_invalid_agent_is_refused_before_codex_runs(
    codex_env: dict[str, str], model_server: ScriptedModelServer
) -> None:
    provider = await make_provider(codex_env)
    for agent, field in INVALID_AGENTS:
        with pytest.raises(InvalidRequestError) as err:
            await provider.start_turn(TurnRequest(agent, "hi"))
        assert err.value.field == field, (agent, err.value)
    await asyncio.sleep(0)
    assert model_server.requests == []
