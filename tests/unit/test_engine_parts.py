"""The engines' pure parts on recorded lines: the app-server turn mapping, engine choice, and the
pieces around them (tool replies, the error mapping, files read distrustfully)."""

from __future__ import annotations

import asyncio
import copy
import json
import os
from pathlib import Path

import pytest

from plexum_openai_provider import (
    AgentBusyError,
    CodexProcessError,
    ConfigError,
    HostConfig,
    InvalidRequestError,
    SessionFormatError,
    ThreadBusyError,
    ToolImage,
    ToolOutput,
    Usage,
)
from plexum_openai_provider._codex.binary import CodexBinary, bundled_codex
from plexum_openai_provider._engine import seam
from plexum_openai_provider._engine.app_server.run import AppServerRun
from plexum_openai_provider._engine.app_server_events import (
    AppServerTurn,
    SubAgentItems,
    sub_agents_named,
)
from plexum_openai_provider._engine.app_server_probe import parse_version, read_schema, schema_gaps
from plexum_openai_provider._engine.select import choose_engine
from plexum_openai_provider._io.files import (
    NotRegularFile,
    read_small_regular_file,
    sweep_temporaries,
)
from plexum_openai_provider.plugin.errors import to_jsonrpc
from plexum_openai_provider.plugin.tool_reply import tool_output

DATA = Path(__file__).parent.parent / "data"
THREAD = "01a212bb-8a8b-74c0-ba9c-d9e3cbe5bcfa"
TURN = "01a212bb-8aa2-7650-8676-deb8581d6732"


def recorded() -> list[tuple[str, dict[str, object]]]:
    lines = (DATA / "app-server-0.163-turn.jsonl").read_text().splitlines()
    return [(m["method"], m["params"]) for m in map(json.loads, lines)]


def test_a_recorded_app_server_turn_maps_to_seam_events() -> None:
    turn = AppServerTurn(THREAD, TURN)
    events = [e for method, params in recorded() for e in turn.feed(method, params)]
    meaningful = [e for e in events if not isinstance(e, (seam.Other, seam.ContextUsage))]
    assert meaningful == [
        seam.CodexWarning(
            "Model metadata for `scripted-model` not found. Defaulting to fallback metadata;"
            " this can degrade performance and cause issues."
        ),
        seam.ItemStarted("call_sh", "commandExecution", "call_sh"),
        seam.ItemDone("call_sh", "commandExecution"),
        seam.Text("Here ", "msg_4"),
        seam.Text("it is: ", "msg_4"),
        seam.Text("hi", "msg_4"),
        # Two model responses: the turn's usage is the sum of their `last` figures.
        seam.TurnDone(Usage(200, 0, 20, 0), "turn", 259),  # codex's own durationMs
    ]
    assert turn.ended


async def test_only_a_turn_whose_items_may_start_processes_is_swept_at_its_end() -> None:
    """The look for what a turn left running (a walk of the app-server's processes) is made
    after a turn with a command, a patch, a tool or an item of a kind not known, and after one
    codex did not complete; not after a completed one of messages alone."""

    class Owner:
        request_timeout_s = 1.0

        def __init__(self) -> None:
            self.swept: list[str] = []

        async def _interrupt(self, run: AppServerRun) -> None: ...

        async def _end_left_running(self, server: object, thread_id: str) -> None:
            self.swept.append(thread_id)

    class Server:
        def __init__(self) -> None:
            self.gone = asyncio.Event()
            self.runs: dict[str, object] = {}

    def item(kind: str) -> dict[str, object]:
        return {"turnId": TURN, "item": {"type": kind, "id": f"i-{kind}"}}

    async def swept(notes: list[tuple[str, dict[str, object]]]) -> bool:
        owner = Owner()
        run = AppServerRun(owner, Server(), THREAD, None)  # type: ignore[arg-type]
        run._started(TURN)
        for method, params in notes:
            run._notify(method, params)
        await run.finish()
        return owner.swept == [THREAD]

    completed = ("turn/completed", {"turn": {"id": TURN, "status": "completed"}})
    quiet = [(m, p) for m, p in recorded() if "call_sh" not in json.dumps(p)]
    assert not await swept(quiet)
    assert await swept(recorded())  # its command
    for kind in ("commandExecution", "fileChange", "mcpToolCall", "someLaterKind"):
        assert await swept([("item/started", item(kind)), completed]), kind
    assert await swept([("item/completed", item("commandExecution")), completed])
    words = [("item/started", item(k)) for k in ("userMessage", "agentMessage", "reasoning")]
    assert not await swept([*words, completed])
    assert await swept(words)  # codex did not say the turn ended
    # Interrupted or failed: a command may have started unannounced (codex 0.163 announces it
    # when its call returns).
    for status in ("interrupted", "failed"):
        ended = ("turn/completed", {"turn": {"id": TURN, "status": status}})
        assert await swept([*words, ended]), status


def test_a_message_that_was_not_streamed_arrives_whole_and_once() -> None:
    turn = AppServerTurn(THREAD, TURN)
    done = {"item": {"type": "agentMessage", "id": "m1", "text": "all at once"}, "turnId": TURN}
    assert turn.feed("item/completed", done) == [seam.Text("all at once", "m1")]
    turn.feed("item/agentMessage/delta", {"turnId": TURN, "itemId": "m2", "delta": "par"})
    done2 = {"item": {"type": "agentMessage", "id": "m2", "text": "partly"}, "turnId": TURN}
    assert turn.feed("item/completed", done2) == [seam.Text("tly", "m2")]


def test_each_message_keeps_its_id_and_the_phase_codex_gave_it() -> None:
    turn = AppServerTurn(THREAD, TURN)

    def item(kind: str, ident: str, phase: object, text: str = "") -> dict[str, object]:
        return {"turnId": TURN, "item": {"type": kind, "id": ident, "text": text, "phase": phase}}

    def delta(ident: str, text: str) -> list[seam.CodexEvent]:
        return turn.feed(
            "item/agentMessage/delta", {"turnId": TURN, "itemId": ident, "delta": text}
        )

    turn.feed("item/started", item("agentMessage", "a", "commentary"))
    assert delta("a", "Let me look") == [seam.Text("Let me look", "a", "commentary")]
    assert turn.feed("item/completed", item("agentMessage", "a", "commentary", "Let me look")) == []
    turn.feed("item/started", item("agentMessage", "b", "final_answer"))
    assert delta("b", "It is 4.") == [seam.Text("It is 4.", "b", "final_answer")]
    # A phase this version does not know, or none, is None; a message never streamed has its
    # item/completed phase.
    turn.feed("item/started", item("agentMessage", "c", "aside"))
    assert delta("c", "x") == [seam.Text("x", "c", None)]
    whole = item("agentMessage", "d", "final_answer", "whole")
    assert turn.feed("item/completed", whole) == [seam.Text("whole", "d", "final_answer")]


def test_a_sub_agents_work_is_read_from_its_thread_recorded_on_0_171() -> None:
    """codex 0.171, gpt-6.2-sol with multi_agent_v2: the parent's subAgentActivity names the
    sub-agent's thread; its host tool call and its answer become events marked with it, and its
    own turn's start and end are not the parent's."""
    notes = [json.loads(line) for line in (DATA / "app-server-0.171-sub-agent.jsonl").open()]
    children: dict[str, str] = {}
    for note in notes:
        children.update(sub_agents_named((note["params"] or {}).get("item")))
    [(child, path)] = children.items()
    assert path == "/root/helper"
    items = SubAgentItems()
    events = [
        event
        for note in notes
        if note["params"].get("threadId") == child
        for event in items.feed(path, note["method"], note["params"])
        if not isinstance(event, seam.Other)
    ]
    assert events == [
        seam.SubAgentTool(
            path,
            "child_call",
            "get_weather",
            '{"city": "Oslo"}',
            "mcp__plexum_host_cx",
            "sunny in Oslo",
            False,
        ),
        seam.Text("CHILD-RESULT", "msg_8", None, path),
    ]
    failed = {"type": "mcpToolCall", "id": "c", "server": "s", "tool": "t", "arguments": {}}
    failed["error"] = {"message": "tool failed"}
    [event] = items.feed(path, "item/completed", {"item": failed})
    assert isinstance(event, seam.SubAgentTool) and event.is_error and event.output == "tool failed"
    assert items.feed(path, "item/completed", None) == []


def test_other_turns_and_odd_shapes_are_tolerated() -> None:
    turn = AppServerTurn(THREAD, TURN)
    assert turn.feed("thread/tokenUsage/updated", {"turnId": "an-earlier-turn", "tokenUsage": {}})
    assert turn.feed("item/completed", {"turnId": TURN, "item": "nope"}) == [
        seam.Unparsed("item/completed without an item")
    ]
    assert turn.feed("turn/completed", "nope") == [
        seam.Unparsed("app-server turn/completed without params")
    ]
    assert turn.feed("some/future/method", {"turnId": TURN}) == [seam.Other("some/future/method")]
    failed = {
        "turn": {
            "id": TURN,
            "status": "failed",
            "error": {"message": "boom", "additionalDetails": "x"},
        }
    }
    assert turn.feed("turn/completed", failed) == [seam.TurnFailed("boom (x)")]
    interrupted = AppServerTurn(THREAD, TURN)
    assert interrupted.feed("turn/completed", {"turn": {"id": TURN, "status": "interrupted"}}) == [
        seam.TurnInterrupted("interrupted")
    ]
    errored = AppServerTurn(THREAD, TURN)
    assert errored.feed(
        "error", {"turnId": TURN, "error": {"message": "Reconnecting... 1/5"}, "willRetry": True}
    ) == [seam.CodexError("Reconnecting... 1/5")]


UNVERIFIED = CodexBinary("/bin/false", "0.100.0")


async def test_engine_choice_and_its_reasons() -> None:
    engine, info = await choose_engine(HostConfig(engine="exec"), UNVERIFIED, {})
    assert (engine.name, info.fallback_reason) == ("exec", None)
    engine, info = await choose_engine(HostConfig(), UNVERIFIED, {})
    assert engine.name == "exec" and info.requested == "app-server"
    assert info.fallback_reason is not None and "0.100.0" in info.fallback_reason
    assert not info.codex_verified
    exec_only = HostConfig.parse({"extra_args": ["--add-dir", "/x"]})
    engine, info = await choose_engine(exec_only, CodexBinary("/bin/false", "0.163.0"), {})
    assert engine.name == "exec" and "['--add-dir', '/x']" in (info.fallback_reason or "")
    with pytest.raises(ConfigError) as err:
        await choose_engine(
            HostConfig.parse({"engine": "app-server", "extra_args": ["--add-dir", "/x"]}),
            UNVERIFIED,
            {},
        )
    assert err.value.key == "extra_args"
    # An app-server that fails its handshake: exec, with the reason (here /bin/false exits).
    engine, info = await choose_engine(HostConfig(engine="app-server"), UNVERIFIED, {})
    assert engine.name == "exec" and "handshake" in (info.fallback_reason or "")
    with pytest.raises(ConfigError) as err:
        await choose_engine(
            HostConfig(), CodexBinary("/bin/false", "0.163.0"), {"PLEXUM_IDLE_UNLOAD_S": "soon"}
        )
    assert err.value.key == "PLEXUM_IDLE_UNLOAD_S"


def test_tool_replies_are_read_strictly() -> None:
    assert tool_output(
        "t", {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ) == ToolOutput("a\nb")
    assert tool_output(
        "t", {"content": [{"type": "text", "text": "no"}], "is_error": True}
    ) == ToolOutput("no", is_error=True)
    image = tool_output(
        "t", {"content": [{"type": "image", "data": "AA==", "mimeType": "image/png"}]}
    )
    assert image.images == (ToolImage("AA==", "image/png"),) and image.text == ""
    for reply, why in [
        ("text", "it is str, not an object"),
        ({}, "content is missing"),
        ({"content": {"type": "text"}}, "content is dict, not a list"),
        ({"content": ["x"]}, "content[0] is str, not an object"),
        ({"content": [{"type": "text", "text": 5}]}, "content[0].text is not a string"),
        ({"content": [{"type": "image"}]}, "content[0] is an image without data and mime_type"),
        ({"content": [], "is_error": "yes"}, "is_error must be true or false, not 'yes'"),
    ]:
        out = tool_output("t", reply)
        assert out.is_error and out.text == f"the host's reply to tool 't' was malformed: {why}"
    dropped = tool_output("t", {"content": [{"type": "audio"}, {"type": "resource"}]})
    assert not dropped.is_error
    assert (
        dropped.text
        == "[2 part(s) of type 'audio', 'resource' dropped: only text and image parts reach codex]"
    )
    assert tool_output("t", {"content": []}).text == "[the tool returned no content]"


def test_one_function_maps_every_error_to_json_rpc() -> None:
    cases = [
        (InvalidRequestError("bad", field="agent.id"), -32602, {"field": "agent.id"}),
        (ConfigError("bad", key="binary", value="x"), -32602, {"field": "config.binary"}),
        (
            AgentBusyError("cx", holder="plugin process 7"),
            -32001,
            {"agent_id": "cx", "holder": "plugin process 7"},
        ),
        (ThreadBusyError("busy", thread_id="t"), -32001, {"thread_id": "t"}),
        (SessionFormatError("odd", path="/r"), -32603, {"path": "/r"}),
        (
            CodexProcessError("died", exit_code=9, stderr_tail="oops"),
            -32603,
            {"exit_code": 9, "stderr_tail": "oops"},
        ),
        (RuntimeError("surprise"), -32603, None),
    ]
    for exc, code, data in cases:
        error = to_jsonrpc(exc)
        assert (error.code, error.data) == (code, data)
        assert str(exc) in error.message


def test_small_files_are_read_without_trusting_them(tmp_path: Path) -> None:
    regular = tmp_path / "f"
    regular.write_bytes(b"x" * 10)
    assert read_small_regular_file(regular, 4).data == b"xxxx"
    assert read_small_regular_file(regular, 4).truncated
    assert read_small_regular_file(tmp_path / "none", 4) is None
    (tmp_path / "link").symlink_to(regular)
    os.mkfifo(tmp_path / "fifo")
    for name, kind in (("link", "a symbolic link"), ("fifo", "a FIFO")):
        with pytest.raises(NotRegularFile) as err:
            read_small_regular_file(tmp_path / name, 4)
        assert err.value.kind == kind
    with pytest.raises(NotRegularFile):
        read_small_regular_file(tmp_path, 4)


def test_only_dead_writers_temporaries_are_swept(tmp_path: Path) -> None:
    dead = tmp_path / f".rollout.jsonl.{2**22 + 7}.aaaa0000.tmp"
    live = tmp_path / f".rollout.jsonl.{os.getpid()}.bbbb0000.tmp"
    other = tmp_path / ".rollout.jsonl.notapid.cccc0000.tmp"
    for path in (dead, live, other):
        path.write_text("x")
    assert sweep_temporaries(tmp_path, "rollout.jsonl") == [dead]
    assert live.exists() and other.exists()


async def test_the_app_server_probe_reads_what_the_engine_relies_on() -> None:
    path = bundled_codex()
    assert path is not None
    definitions, requests, notifications = await read_schema(path, {})
    assert schema_gaps(definitions, requests, notifications) == []  # codex 0.163 has it all
    # A codex that renamed one method, dropped a field and an input type: each is named.
    requests = copy.deepcopy(requests)
    for variant in requests["oneOf"]:
        enum = variant["properties"]["method"]["enum"]
        if enum == ["turn/steer"]:
            enum[0] = "turn/nudge"
    definitions = copy.deepcopy(definitions)
    del definitions["TurnSteerParams"]["properties"]["expectedTurnId"]
    definitions["UserInput"]["oneOf"] = [
        v for v in definitions["UserInput"]["oneOf"] if v["properties"]["type"]["enum"] != ["image"]
    ]
    assert schema_gaps(definitions, requests, notifications) == [
        "method turn/steer",
        "TurnSteerParams.expectedTurnId",
        "input item image",
    ]
    assert parse_version("0.171.0") == (0, 171, 0) and parse_version("dev") is None


async def test_an_older_codex_runs_on_exec_saying_why() -> None:
    engine, info = await choose_engine(HostConfig(), CodexBinary("/bin/false", "0.150.2"), {})
    assert engine.name == "exec"
    assert info.fallback_reason == (
        "codex 0.150.2 is older than 0.163.0, the oldest the app-server engine runs on"
    )
