"""The turn logic on the fake codex seam: recorded exec lines, no codex, milliseconds each."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import (
    AgentBusyError,
    AgentContext,
    BridgeError,
    ChatMessage,
    CodexHomeError,
    CodexProcessError,
    ErrorEvent,
    Event,
    HostConfig,
    InvalidRequestError,
    Notice,
    TextDelta,
    TextPart,
    ToolCall,
    ToolOutput,
    ToolResult,
    ToolSpec,
    TurnRequest,
    TurnResult,
    Usage,
)
from plexum_openai_provider._engine.seam import RunSpec
from plexum_openai_provider._turn.delivery import DELIVERY_FILE, load_delivery
from plexum_openai_provider._turn.records import WORKSPACE_FILE, open_records
from plexum_openai_provider._turn.thread_store import SESSION_FILE, ThreadRecord
from plexum_openai_provider._turn.workspace import OWNER_FILE
from plexum_openai_provider.testing import FakeEngine, FakeRun, exec_lines
from tests.helpers import provider_on

DATA = Path(__file__).parent.parent / "data"
THREAD = "01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1"
OTHER = "01a20aa9-1f0f-7e20-a261-459ebb6374ca"  # the thread of the recorded rollout
STALE = "Error: thread/resume: no rollout found for thread id " + THREAD
pytestmark = pytest.mark.timeout(10)


class Rig:
    def __init__(self, tmp_path: Path, runs: list[FakeRun], **config: Any) -> None:
        self.home = tmp_path / "codex-home"
        self.state = tmp_path / "state"
        self.workspace = tmp_path / "ws"
        self.workspace.mkdir(parents=True)
        self.engine = FakeEngine(list(runs))

        async def tools(call: Any) -> ToolOutput:
            return ToolOutput("ok")

        self.provider = provider_on(
            self.engine, tmp_path, HostConfig.parse(config), tool_handler=tools
        )

    @property
    def agent(self) -> AgentContext:
        return AgentContext("cx", self.workspace)

    async def start(self, prompt: str = "hello", **kw: Any) -> Any:
        return await self.provider.start_turn(TurnRequest(self.agent, prompt, **kw))

    async def turn(self, prompt: str = "hello", **kw: Any) -> tuple[list[Event], TurnResult]:
        turn = await self.start(prompt, **kw)
        events = [e async for e in turn]
        return events, await turn.result()

    @property
    def records(self) -> Path:
        """The workspace's records folder (made as a first claim makes it)."""
        return open_records(self.state, self.workspace)

    def stored(self) -> str:
        return (self.records / SESSION_FILE).read_text()

    def place_rollout(self) -> Path:
        """The recorded 0.163 rollout of a turn with a shell call, where codex would keep it."""
        day = dt.datetime.now(dt.UTC).date()
        folder = self.home / "sessions" / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
        folder.mkdir(parents=True)
        path = folder / f"rollout-2026-11-23T23-06-25-{OTHER}.jsonl"
        shutil.copy(DATA / "rollout-0.163-tool-turn.jsonl", path)
        return path


async def test_a_completed_turn_maps_events_and_keeps_the_thread(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [FakeRun(exec_lines.turn(THREAD, "hi there", Usage(7, 1, 2, 0)))])
    events, result = await rig.turn()
    # No rollout to read: codex's total is the best figure (a new thread's total is its turn's).
    assert events == [TextDelta("hi there", "item_1"), Usage(7, 1, 2, 0)]
    assert result == TurnResult(result.turn_id, "completed", THREAD, Usage(7, 1, 2, 0))
    assert rig.stored() == THREAD + "\n"
    [spec] = rig.engine.specs
    assert spec == RunSpec(rig.workspace, "hello", None, None, None)
    # Nothing left in the workspace; the records and the agent's claim are the plugin's.
    assert list(rig.workspace.iterdir()) == []
    assert sorted(p.name for p in rig.records.iterdir()) == sorted(
        [OWNER_FILE, DELIVERY_FILE, SESSION_FILE, WORKSPACE_FILE]
    )
    delivered = load_delivery(rig.records)
    assert delivered is not None and (delivered.thread_id, delivered.open) == (THREAD, False)


async def test_the_next_turn_resumes_and_usage_and_blocks_come_from_the_rollout(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, [])
    path = rig.place_rollout()
    recorded = path.read_bytes()
    path.write_bytes(b"")  # the thread exists; this turn's records are written below
    (rig.records / SESSION_FILE).write_text(OTHER + "\n")
    lines = [
        exec_lines.thread_started(OTHER),
        exec_lines.command_done("echo hi-from-shell", "hi-from-shell\n"),
        exec_lines.agent_message("done"),
        exec_lines.turn_completed(Usage(900, 0, 90, 0)),  # the thread's total
    ]
    rig.engine.runs.append(FakeRun(lines, delay_s=0.05))
    turn = await rig.start()
    while not rig.engine.specs:
        await asyncio.sleep(0.001)
    path.write_bytes(recorded)  # what codex writes as the turn goes
    events = [e async for e in turn]
    result = await turn.result()
    assert rig.engine.specs[0].resume == OTHER
    assert result.status == "completed" and result.thread_id == OTHER
    call = next(e for e in events if isinstance(e, ToolCall))
    assert call == ToolCall("call_2", "exec_command", '{"cmd": "echo hi-from-shell"}', None)
    output = next(e for e in events if isinstance(e, ToolResult))
    assert output.block_id == "call_2" and "hi-from-shell" in output.output
    # The turn's own tokens (the rollout's turn_token_usage), not the thread's total.
    assert result.usage == Usage(200, 0, 20, 0) and events[-1] == Usage(200, 0, 20, 0)


async def test_a_stale_thread_gives_a_notice_and_a_new_thread(tmp_path: Path) -> None:
    rig = Rig(
        tmp_path,
        [
            FakeRun([], exit_code=1, stderr=STALE + "\nStack backtrace:\n  0: x"),
            FakeRun(exec_lines.turn(OTHER, "fresh")),
        ],
    )
    (rig.records / SESSION_FILE).write_text(THREAD + "\n")
    events, result = await rig.turn()
    assert [s.resume for s in rig.engine.specs] == [THREAD, None]
    notices = [e for e in events if isinstance(e, Notice)]
    assert [n.code for n in notices] == ["resume_failed"] and THREAD in notices[0].message
    assert result.status == "completed" and result.thread_id == OTHER
    assert rig.stored() == OTHER + "\n"


async def test_codex_silently_starting_another_thread_is_said(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [FakeRun(exec_lines.turn(OTHER, "x"))])
    (rig.records / SESSION_FILE).write_text(THREAD + "\n")
    events, _ = await rig.turn()
    assert events[0] == Notice(
        "resume_failed",
        f"codex started thread {OTHER} instead of resuming {THREAD}; the earlier context is lost",
    )
    assert rig.stored() == OTHER + "\n"


async def test_turn_failed_then_exit_0_fails_with_codex_message_only(tmp_path: Path) -> None:
    lines = [
        exec_lines.thread_started(THREAD),
        exec_lines.error("Reconnecting... 1/5"),
        exec_lines.error("stream disconnected"),
        exec_lines.turn_failed("the model broke"),
    ]
    rig = Rig(tmp_path, [FakeRun(lines, exit_code=0)])
    events, result = await rig.turn()
    assert result.status == "failed" and result.error is not None
    assert (result.error.code, result.error.message) == ("codex_failed", "the model broke")
    # The first error was followed by another: a notice. The last one is what turn.failed said.
    assert events == [
        Notice("codex_error", "Reconnecting... 1/5"),
        ErrorEvent("codex_failed", "the model broke", retryable=True),
    ]
    assert rig.stored() == THREAD + "\n"  # the thread is kept for the next turn


async def test_an_error_that_did_not_end_the_turn_is_a_notice(tmp_path: Path) -> None:
    lines = exec_lines.turn(THREAD, "ok")
    lines.insert(2, exec_lines.error("Reconnecting... 1/5"))
    events, result = await Rig(tmp_path, [FakeRun(lines)]).turn()
    assert result.status == "completed"
    assert events[:2] == [Notice("codex_error", "Reconnecting... 1/5"), TextDelta("ok", "item_1")]


async def test_exit_without_a_terminal_event_says_the_code_and_why(tmp_path: Path) -> None:
    rig = Rig(
        tmp_path,
        [
            FakeRun(
                [exec_lines.thread_started(THREAD), exec_lines.error("model unreachable")],
                exit_code=3,
                stderr="noise\nError: it broke\nStack backtrace:\n 0: frame",
            ),
            FakeRun([], exit_code=2, stderr="garbage\nError: unexpected argument '--x'"),
        ],
    )
    events, result = await rig.turn()
    assert result.error is not None and result.error.code == "codex_exited"
    assert result.error.message == ("codex ended (code 3) before the turn ended: model unreachable")
    assert events == [ErrorEvent("codex_exited", result.error.message, retryable=True)]
    _, second = await rig.turn("again")
    assert second.error is not None
    assert second.error.message.endswith("Error: unexpected argument '--x'")


async def test_oversize_and_malformed_lines_are_skipped(tmp_path: Path) -> None:
    lines: list[str | int] = [
        exec_lines.thread_started(THREAD),
        600 * 1024 * 1024,  # a line longer than the framer keeps
        "not json",
        '{"type":"some.future.event"}',
        exec_lines.agent_message("still here"),
        exec_lines.turn_completed(Usage(1, 0, 1, 0)),
    ]
    events, result = await Rig(tmp_path, [FakeRun(lines)]).turn()
    assert result.status == "completed"
    assert events == [TextDelta("still here", "item_1"), Usage(1, 0, 1, 0)]


async def test_idle_timeout_stops_a_silent_codex(tmp_path: Path) -> None:
    rig = Rig(
        tmp_path, [FakeRun([exec_lines.thread_started(THREAD)], hang=True)], idle_timeout_s=0.05
    )
    _, result = await rig.turn()
    assert result.status == "failed" and result.error is not None
    assert result.error.code == "timeout" and "idle_timeout_s=0.05" in result.error.message
    assert rig.engine.processes[0].stopped.is_set()
    assert rig.stored() == THREAD + "\n"


async def test_a_silent_command_is_not_idleness_but_the_turn_timeout_still_holds(
    tmp_path: Path,
) -> None:
    # `codex exec --json` prints nothing while a command runs (a build, a test run).
    build = [
        exec_lines.thread_started(THREAD),
        exec_lines.command_started("make"),
        exec_lines.command_done("make", "built"),
        exec_lines.agent_message("built it"),
        exec_lines.turn_completed(Usage(1, 0, 1, 0)),
    ]
    rig = Rig(tmp_path / "1", [FakeRun(build, pauses={2: 0.3})], idle_timeout_s=0.1)
    _, result = await rig.turn()
    assert result.status == "completed", result.error
    # A command that never ends is bounded by turn_timeout_s.
    hung = [exec_lines.thread_started(THREAD), exec_lines.command_started("make")]
    rig = Rig(tmp_path / "2", [FakeRun(hung, hang=True)], idle_timeout_s=0.1, turn_timeout_s=0.4)
    _, result = await rig.turn()
    assert result.error is not None and "turn_timeout_s=0.4" in result.error.message


async def test_turn_timeout_stops_a_codex_that_keeps_talking(tmp_path: Path) -> None:
    chatter = [exec_lines.error(f"Reconnecting... {i}") for i in range(200)]
    rig = Rig(
        tmp_path,
        [FakeRun([exec_lines.thread_started(THREAD), *chatter], delay_s=0.01)],
        turn_timeout_s=0.15,
        idle_timeout_s=5,
    )
    events, result = await rig.turn()
    assert result.error is not None and result.error.code == "timeout"
    assert result.error.message.startswith("codex was stopped after turn_timeout_s=0.15 s")
    assert "(last codex error: Reconnecting..." in result.error.message
    assert any(isinstance(e, Notice) and e.code == "codex_error" for e in events)


async def test_cancel_before_codex_starts_runs_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [FakeRun(exec_lines.turn(THREAD, "no"))])
    turn = await rig.start()
    turn.cancel("changed my mind")
    result = await turn.result()
    assert result.status == "cancelled" and result.error is not None
    assert result.error.message == "changed my mind"
    assert rig.engine.specs == []


async def test_cancel_while_waiting_for_a_consume_runs_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [FakeRun(exec_lines.turn(THREAD, "no"))])
    lock = rig.provider._agent_lock("cx")
    await lock.acquire()  # a consume of the agent is rewriting
    turn = await rig.start()
    await asyncio.sleep(0)
    turn.cancel()
    lock.release()
    assert (await turn.result()).status == "cancelled"
    assert rig.engine.specs == []


async def test_cancel_while_codex_runs_stops_it_and_keeps_the_thread(tmp_path: Path) -> None:
    aborted = exec_lines.error("turn aborted by user")
    rig = Rig(
        tmp_path,
        [FakeRun([exec_lines.thread_started(THREAD)], hang=True, on_stop=[aborted])],
    )
    turn = await rig.start()
    while not rig.engine.processes:
        await asyncio.sleep(0.001)
    turn.cancel()
    events = [e async for e in turn]
    result = await turn.result()
    assert result.status == "cancelled" and result.thread_id == THREAD
    assert rig.engine.processes[0].stopped.is_set()
    assert ErrorEvent("cancelled", "the turn was cancelled", retryable=False) in events
    assert rig.stored() == THREAD + "\n"


async def test_cancel_after_the_end_changes_nothing(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [FakeRun(exec_lines.turn(THREAD, "done"))])
    turn = await rig.start()
    result = await turn.result()
    turn.cancel()
    assert (await turn.result()) == result and result.status == "completed"


async def test_one_turn_per_agent_and_free_again_after(tmp_path: Path) -> None:
    rig = Rig(
        tmp_path,
        [
            FakeRun([exec_lines.thread_started(THREAD)], hang=True),
            FakeRun(exec_lines.turn(THREAD, "2")),
        ],
    )
    first = await rig.start()
    with pytest.raises(AgentBusyError):
        await rig.start("again")
    while not rig.engine.processes:
        await asyncio.sleep(0.001)
    first.cancel()
    await first.result()
    _, second = await rig.turn("now")
    assert second.status == "completed"


async def test_nothing_is_registered_when_the_bridge_cannot_start(tmp_path: Path) -> None:
    """The round-1 bug: a turn registered as running before a step that failed left its agent
    busy for ever."""
    rig = Rig(tmp_path, [FakeRun(exec_lines.turn(THREAD, "no tools, fine"))])
    rig.provider._bridge.socket_dir = Path("/tmp/" + "x" * 120)
    with pytest.raises(BridgeError, match="PLEXUM_SOCKET_DIR"):
        await rig.start(tools=(ToolSpec("t"),))
    _, result = await rig.turn()  # not busy, and a turn without tools needs no socket
    assert result.status == "completed"
    await rig.provider.close()
    assert not rig.provider.busy("cx")


async def test_nothing_is_registered_when_the_records_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig = Rig(tmp_path, [FakeRun(exec_lines.turn(THREAD, "ok"))])

    def read_only(self: ThreadRecord) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    with monkeypatch.context() as patch:
        patch.setattr(ThreadRecord, "reserve", read_only)
        with pytest.raises(CodexHomeError) as err:
            await rig.start()
    assert err.value.path == str(rig.records)
    assert err.value.message.endswith("Read-only file system")
    assert rig.engine.specs == []
    _, result = await rig.turn()
    assert result.status == "completed"


async def test_a_codex_that_cannot_start_fails_the_turn_and_frees_the_agent(
    tmp_path: Path,
) -> None:
    rig = Rig(tmp_path, [])

    async def broken(spec: RunSpec) -> Any:
        raise CodexProcessError("codex died at once", exit_code=127, stderr_tail="no such file")

    rig.engine.start_run = broken  # type: ignore[method-assign]
    events, result = await rig.turn()
    assert result.error is not None and result.error.code == "codex_exited"
    assert events == [ErrorEvent("codex_exited", "codex died at once", retryable=True)]
    assert not rig.provider.busy("cx")


async def test_duplicate_turn_ids_are_refused_but_a_refused_id_may_be_reused(
    tmp_path: Path,
) -> None:
    rig = Rig(
        tmp_path,
        [
            FakeRun([exec_lines.thread_started(THREAD)], hang=True),
            FakeRun(exec_lines.turn(THREAD, "ok")),
        ],
    )
    first = await rig.start(turn_id="t-1")
    with pytest.raises(AgentBusyError):
        await rig.start(turn_id="t-2")  # refused: t-2 is still free
    while not rig.engine.processes:
        await asyncio.sleep(0.001)
    first.cancel()
    await first.result()
    with pytest.raises(InvalidRequestError) as err:
        await rig.start(turn_id="t-1")
    assert err.value.field == "turn_id"
    _, result = await rig.turn(turn_id="t-2")
    assert result.status == "completed"


async def test_close_cancels_running_turns_and_closes_the_engine(tmp_path: Path) -> None:
    rig = Rig(tmp_path, [FakeRun([exec_lines.thread_started(THREAD)], hang=True)])
    turn = await rig.start()
    while not rig.engine.processes:
        await asyncio.sleep(0.001)
    await rig.provider.close("bye")
    result = await turn.result()
    assert result.status == "cancelled" and result.error is not None
    assert result.error.message == "bye" and rig.engine.closed
    with pytest.raises(AgentBusyError):
        await rig.start()


@pytest.mark.parametrize("kind", ["symlink", "fifo", "huge", "garbage"])
async def test_a_session_file_that_is_not_a_thread_id_is_replaced_without_echoing_it(
    tmp_path: Path, kind: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT " * 10)
    rig = Rig(tmp_path, [FakeRun(exec_lines.turn(THREAD, "fresh"))])
    session = rig.records / SESSION_FILE  # the older layout's file, moved in, may be any of these
    if kind == "symlink":
        session.symlink_to(secret)
    elif kind == "fifo":
        os.mkfifo(session)  # reading it would block every agent's turns
    elif kind == "huge":
        session.write_bytes(b"TOP-SECRET-CONTENT" * 100_000)
    else:
        session.write_text("TOP-SECRET-CONTENT\n")
    events, result = await rig.turn()
    assert result.status == "completed"
    [notice] = [e for e in events if isinstance(e, Notice)]
    assert notice.code == "resume_failed" and "TOP-SECRET" not in notice.message
    assert rig.engine.specs[0].resume is None
    assert session.is_file() and not session.is_symlink()
    assert rig.stored() == THREAD + "\n"
    assert secret.read_text().startswith("TOP-SECRET")  # the link's target was not touched


def _recorded_reconnects(source: str) -> list[str]:
    """codex exec's reconnect lines, as 0.163 printed them (tests/data/reconnect-0.163.jsonl)."""
    lines = (DATA / "reconnect-0.163.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [
        json.dumps(r["raw"])
        for r in records
        if r["engine"] == "exec" and r["reconnect"] and r["source"].startswith(source)
    ]


async def test_a_model_codex_cannot_reach_fails_the_turn_model_unreachable(tmp_path: Path) -> None:
    """codex's reconnect notices are not activity: a codex that says only them is stopped after
    unreachable_timeout_s (or idle_timeout_s, the shorter), and the turn fails
    model_unreachable, retryable, with codex's last words."""
    waiting = _recorded_reconnects("closed port")[0]
    talk = [exec_lines.thread_started(THREAD), exec_lines.turn_started(), *[waiting] * 200]
    for config, which in (
        ({"unreachable_timeout_s": 0.3, "idle_timeout_s": 30}, "unreachable_timeout_s=0.3 s"),
        ({"unreachable_timeout_s": 30, "idle_timeout_s": 0.3}, "idle_timeout_s=0.3 s"),
    ):
        folder = tmp_path / which[:4]
        rig = Rig(folder, [FakeRun(talk, delay_s=0.02)], turn_timeout_s=5, **config)
        started = asyncio.get_running_loop().time()
        events, result = await rig.turn()
        took = asyncio.get_running_loop().time() - started
        assert result.status == "failed" and result.error is not None
        assert (result.error.code, result.error.retryable) == ("model_unreachable", True)
        assert result.error.message == (
            f"codex could not reach the model; it was stopped after {which}"
            f"{' of reconnecting' if 'unreachable' in which else ' without an answer'}"
            " (codex's last message: Reconnecting... waiting for network (Connection failed:"
            " error sending request))"
        )
        assert 0.3 <= took < 2
        assert events[-1] == ErrorEvent("model_unreachable", result.error.message, True, True, None)


async def test_the_model_answering_again_ends_the_reconnecting(tmp_path: Path) -> None:
    """Reconnects that the model's answer follows are not counted against the next ones."""
    stalled = _recorded_reconnects("stalled stream")
    assert len(stalled) == 3
    lines = [
        exec_lines.thread_started(THREAD),
        exec_lines.turn_started(),
        *stalled,
        exec_lines.agent_message("back"),
        *stalled,
        exec_lines.agent_message("again"),
        exec_lines.turn_completed(Usage(1, 0, 1, 0)),
    ]
    rig = Rig(tmp_path, [FakeRun(lines, delay_s=0.1)], unreachable_timeout_s=0.5)
    events, result = await rig.turn()
    assert result.status == "completed", result.error
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["back", "again"]


async def test_a_turn_with_nothing_to_answer_is_refused_before_it_claims_the_workspace(
    tmp_path: Path,
) -> None:
    """Bad input changes nothing: a conversation with no user message after the agent's last
    answer is refused before the workspace is claimed, so the workspace is no agent's yet and
    another agent can work there."""
    engine = FakeEngine([FakeRun(exec_lines.turn(THREAD, "ok"))])
    provider = provider_on(engine, tmp_path)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    only_an_answer = (ChatMessage.user("do it"), ChatMessage("assistant", (TextPart("done"),)))
    with pytest.raises(InvalidRequestError) as err:
        await provider.start_turn(
            TurnRequest(AgentContext("cx", workspace), messages=only_an_answer)
        )
    assert err.value.field == "messages" and engine.processes == []
    assert not list(tmp_path.rglob(OWNER_FILE))  # no records made for it
    turn = await provider.start_turn(TurnRequest(AgentContext("other", workspace), "hi"))
    assert (await turn.result()).status == "completed"
    await provider.close()
