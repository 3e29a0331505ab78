"""Traces and metrics for the tools a daemon's operators already run (OpenTelemetry), at the
edges of a turn only: its start and end, the host tool calls, a consume, waiting for the agent.

Off, and costing one attribute lookup per edge, unless both hold: the ``otel`` extra is installed
(``pip install 'plexum-openai-provider[otel]'``) and the standard variables name an OTLP endpoint
(``OTEL_EXPORTER_OTLP_ENDPOINT``, or ``…_TRACES_ENDPOINT`` / ``…_METRICS_ENDPOINT``), with
``OTEL_SDK_DISABLED`` not ``true``. Everything else (``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, headers, ``OTEL_METRIC_EXPORT_INTERVAL``…) is the SDK's, as usual.

Spans: ``plexum.turn`` (``plexum.agent``, ``plexum.turn_id``, ``plexum.model``, ``plexum.engine``,
``plexum.status``, ``plexum.error_code``, ``gen_ai.usage.*`` tokens), a child of the host's span
when ``turn/start`` carries a ``traceparent``; below it ``plexum.waiting`` (for the agent's lock:
a consume of the agent) and ``plexum.tool_call`` (``plexum.tool``: each host tool call); and
``plexum.consume``. The turn's own context goes on to codex (app-server's request ``trace``,
exec's ``TRACEPARENT``), so codex's spans join the trace when its ``[otel]`` is configured.
Metrics: ``plexum.turns`` (by ``plexum.status``), ``plexum.turn.duration``,
``plexum.turn.time_to_first_token`` (s), ``plexum.tokens`` (by ``plexum.token_type``),
``plexum.tool_call.duration`` (s), ``plexum.turns.running`` and ``plexum.turns.waiting``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import cast

from .events import Event, Usage
from .requests import ToolCallRequest, ToolHandler, ToolOutput

__all__ = ["NOOP", "Telemetry", "TurnTrace", "telemetry_from_env", "traced"]

log = logging.getLogger(__name__)

_ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)


class TurnTrace:
    """One turn's span and figures; this base does nothing (telemetry off)."""

    def __init__(self, traceparent: str | None = None) -> None:
        # What codex is given: the turn span's own context, else the host's as it came.
        self.traceparent = traceparent

    def event(self, event: Event) -> None: ...

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        yield

    def end(self, status: str, usage: Usage | None, error_code: str | None) -> None: ...


class Telemetry:
    """Where the edges report; this base does nothing (telemetry off)."""

    enabled = False

    def turn(
        self, *, agent: str, turn_id: str, model: str | None, engine: str, traceparent: str | None
    ) -> TurnTrace:
        return TurnTrace(traceparent)

    @contextlib.contextmanager
    def tool_call(self, turn_id: str, name: str) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def consume(self, agent: str) -> Iterator[None]:
        yield

    def close(self) -> None: ...


NOOP = Telemetry()


def traced(telemetry: Telemetry, handler: ToolHandler | None) -> ToolHandler | None:
    """The host-tool handler, each call in a span of its turn (as it is, when off)."""
    if handler is None or not telemetry.enabled:
        return handler

    async def call_traced(call: ToolCallRequest) -> ToolOutput:
        with telemetry.tool_call(call.turn_id, call.name):
            return await handler(call)

    return call_traced


def telemetry_from_env(env: Mapping[str, str]) -> Telemetry:
    """OpenTelemetry when the extra is installed and an endpoint is named, else :data:`NOOP`."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true" or not any(
        env.get(name) for name in _ENDPOINTS
    ):
        return NOOP
    try:
        from ._otel import OtelTelemetry
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_* is set but the otel extra is not installed"
            " (pip install 'plexum-openai-provider[otel]'): no telemetry"
        )
        return NOOP
    return cast(Telemetry, OtelTelemetry(env))
