"""Telemetry is off and costs nothing unless an OTLP endpoint is named: the SDK is not even
imported; with one, a turn on the fake seam reports its span and waits in a span of its own."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from plexum_openai_provider import AgentContext, HostConfig, TurnRequest, Usage
from plexum_openai_provider.telemetry import (
    NOOP,
    Telemetry,
    TurnTrace,
    telemetry_from_env,
    traced,
)
from plexum_openai_provider.testing import FakeEngine, FakeRun, exec_lines
from tests.helpers import provider_on

THREAD = "01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1"


def test_off_without_an_endpoint_and_the_sdk_is_never_imported() -> None:
    assert telemetry_from_env({}) is NOOP
    assert telemetry_from_env({"OTEL_SERVICE_NAME": "x"}) is NOOP
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}
    assert telemetry_from_env(disabled) is NOOP
    handler = object()
    assert traced(NOOP, handler) is handler  # type: ignore[arg-type]  # the same, not wrapped
    trace = NOOP.turn(agent="a", turn_id="t", model=None, engine="exec", traceparent="00-x")
    assert type(trace) is TurnTrace and trace.traceparent == "00-x"  # passed on as it came
    code = (
        "import sys, os; from plexum_openai_provider.provider import CodexProvider;"
        " from plexum_openai_provider.telemetry import telemetry_from_env;"
        " telemetry_from_env(os.environ);"
        " print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": ":".join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


class Recording(Telemetry):
    """What the edges reported, in order."""

    enabled = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, ...]] = []

    def turn(
        self, *, agent: str, turn_id: str, model: str | None, engine: str, traceparent: str | None
    ) -> TurnTrace:
        seen = self.seen
        seen.append(("turn", agent, turn_id, str(model), engine))

        class Trace(TurnTrace):
            @contextlib.contextmanager
            def span(self, name: str) -> Iterator[None]:
                seen.append(("span", name))
                yield
                seen.append(("span end", name))

            def end(self, status: str, usage: Usage | None, error_code: str | None) -> None:
                seen.append(("end", status, str(usage), str(error_code)))

        return Trace("00-" + "1" * 32 + "-" + "2" * 16 + "-01")

    @contextlib.contextmanager
    def tool_call(self, turn_id: str, name: str) -> Iterator[None]:
        self.seen.append(("tool", turn_id, name))
        yield


async def test_a_turn_reports_its_edges_and_waits_in_a_span(tmp_path: Path) -> None:
    engine = FakeEngine([FakeRun(exec_lines.turn(THREAD, "hi", Usage(3, 0, 1, 0)))])
    provider = provider_on(engine, tmp_path, HostConfig())
    recording = Recording()
    provider._telemetry = recording  # as telemetry_from_env would give it
    workspace = tmp_path / "ws"
    workspace.mkdir()
    lock = provider._agent_lock("cx")
    await lock.acquire()  # as a consume of the agent holds it
    turn = await provider.start_turn(
        TurnRequest(AgentContext("cx", workspace), "hi", turn_id="t-1")
    )
    while ("span", "waiting") not in recording.seen:
        await asyncio.sleep(0.01)
    lock.release()
    [e async for e in turn]
    assert (await turn.result()).status == "completed"
    await provider.close()
    assert recording.seen == [
        ("turn", "cx", "t-1", "codex", "exec"),
        ("span", "waiting"),
        ("span end", "waiting"),
        ("end", "completed", str(Usage(3, 0, 1, 0)), "None"),
    ]
    # codex was given the turn's own trace context.
    assert engine.specs[0].traceparent == "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
