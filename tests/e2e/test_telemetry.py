"""OpenTelemetry: the plugin's spans and metrics, as an OTLP/HTTP receiver in the test gets them
(protobuf decoded with opentelemetry-proto): a turn is a child of the host's span, its host tool
call and the consume have spans of their own, the metrics are there."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from plexum_openai_provider import AgentContext, ToolSpec
from plexum_openai_provider._bridge.names import mcp_namespace, server_name
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import FunctionCall, Message, ScriptedModelServer
from tests.conftest import host_config

HOST_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HOST_SPAN = "00f067aa0ba902b7"


class Receiver:
    """An OTLP/HTTP collector: keeps each export's path and protobuf body."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, bytes]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                received.append((self.path, self.rfile.read(length)))
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[Any]:
        out = []
        for path, body in self.posts:
            if path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                for resource in request.resource_spans:
                    for scope in resource.scope_spans:
                        out.extend(scope.spans)
        return out

    def metric_names(self) -> set[str]:
        names = set()
        for path, body in self.posts:
            if path == "/v1/metrics":
                request = ExportMetricsServiceRequest.FromString(body)
                for resource in request.resource_metrics:
                    for scope in resource.scope_metrics:
                        names.update(m.name for m in scope.metrics)
        return names


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = value.string_value if value.HasField("string_value") else value.int_value
    return out


async def test_a_turn_is_traced_as_a_child_of_the_hosts_span(
    codex_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    receiver: Receiver,
    engine: str,
) -> None:
    env = {
        **codex_env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "plexum-test",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_METRIC_EXPORT_INTERVAL": "300",
    }
    namespace = mcp_namespace(server_name("cx"))
    model_server.enqueue(
        FunctionCall("get_weather", json.dumps({"city": "Oslo"}), "c_w", namespace), Message("ok")
    )
    tool = ToolSpec("get_weather", "The weather", {"type": "object"})
    agent = AgentContext("cx", workspace)
    seen: list[str] = []

    def weather(args: dict[str, Any]) -> str:
        # While the call runs, codex exec runs: the turn's trace context is in its environment.
        seen.extend(_codex_traceparents(str(workspace)))
        return "rain"

    async with await PluginClient.spawn(env=env, tools={"get_weather": weather}) as plugin:
        await plugin.initialize(host_config())
        turn = plugin.start_turn(
            "t-1", agent, "weather?", tools=[tool], traceparent=f"00-{HOST_TRACE}-{HOST_SPAN}-01"
        )
        [e async for e in turn]
        result = await turn.result()
        assert result.status == "completed"
        assert (await plugin.consume(agent, ["c_w"]))["consumed"] == ["c_w"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(receiver.spans()) < 3:
        time.sleep(0.05)
    spans = {s.name: s for s in receiver.spans()}
    turn_span, tool_span, consume = (
        spans["plexum.turn"],
        spans["plexum.tool_call"],
        spans["plexum.consume"],
    )
    # The turn continues the host's trace, under the host's span; the tool call under the turn.
    assert turn_span.trace_id.hex() == HOST_TRACE and turn_span.parent_span_id.hex() == HOST_SPAN
    assert tool_span.trace_id == turn_span.trace_id
    assert tool_span.parent_span_id == turn_span.span_id
    assert attrs(turn_span) == {
        "plexum.agent": "cx",
        "plexum.turn_id": "t-1",
        "plexum.model": "codex",
        "plexum.engine": engine,
        "plexum.status": "completed",
        "gen_ai.usage.input_tokens": 200,
        "gen_ai.usage.output_tokens": 20,
        "gen_ai.usage.cached_input_tokens": 0,
        "gen_ai.usage.reasoning_tokens": 0,
    }
    if engine == "exec":  # (app-server gets it as the turn/start request's `trace`)
        assert set(seen) == {f"00-{HOST_TRACE}-{turn_span.span_id.hex()}-01"}
    assert attrs(tool_span) == {"plexum.turn_id": "t-1", "plexum.tool": "get_weather"}
    assert attrs(consume) == {"plexum.agent": "cx"}
    assert not consume.parent_span_id  # a request of its own
    assert {
        "plexum.turns",
        "plexum.turn.duration",
        "plexum.turn.time_to_first_token",
        "plexum.tokens",
        "plexum.tool_call.duration",
        "plexum.turns.running",
    } <= receiver.metric_names()
    print(
        "\n".join(
            f"{s.name} span={s.span_id.hex()} parent={s.parent_span_id.hex() or '-'}"
            f" trace={s.trace_id.hex()} {attrs(s)}"
            for s in receiver.spans()
        )
    )


def _codex_traceparents(workspace: str) -> list[str]:
    """TRACEPARENT of each `codex exec` working in ``workspace``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read().split(b"\0")
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if b"exec" in cmdline and b"--json" in cmdline and cwd == workspace:
            out += [v.split(b"=", 1)[1].decode() for v in environ if v.startswith(b"TRACEPARENT=")]
    return out
