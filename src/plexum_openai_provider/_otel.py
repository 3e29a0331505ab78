"""The OpenTelemetry side of :mod:`.telemetry` (imported only when the ``otel`` extra is there
and an endpoint is configured): private tracer and meter providers exporting OTLP/HTTP."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ._version import __version__
from .events import Event, ReasoningDelta, TextDelta, ToolStarted, Usage

__all__ = ["OtelTelemetry"]

_NAME = "plexum-openai-provider"


def _traceparent(span: Span) -> str | None:
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def attributes(**values: Any) -> dict[str, Any]:
    return {f"plexum.{k}": v for k, v in values.items() if v is not None}


class _OtelTurn:
    """A :class:`~.telemetry.TurnTrace` with a span (the same methods)."""

    def __init__(self, owner: OtelTelemetry, span: Span, attrs: dict[str, Any]) -> None:
        self.traceparent = _traceparent(span)
        self._owner = owner
        self._span = span
        self._attrs = attrs
        self._started = time.monotonic()
        self._first: float | None = None

    def event(self, event: Event) -> None:
        if self._first is None and isinstance(event, (TextDelta, ReasoningDelta, ToolStarted)):
            self._first = time.monotonic()
            self._owner.ttft.record(self._first - self._started, self._attrs)

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        waiting = name == "waiting"
        if waiting:
            self._owner.waiting.add(1)
        context = trace.set_span_in_context(self._span)
        try:
            with self._owner.tracer.start_as_current_span(
                f"plexum.{name}", context=context, attributes=self._attrs
            ):
                yield
        finally:
            if waiting:
                self._owner.waiting.add(-1)

    def end(self, status: str, usage: Usage | None, error_code: str | None) -> None:
        span = self._span
        span.set_attribute("plexum.status", status)
        if error_code is not None:
            span.set_attribute("plexum.error_code", error_code)
            span.set_status(Status(StatusCode.ERROR, error_code))
        counts = {}
        if usage is not None:
            counts = {
                "input": usage.input_tokens,
                "cached_input": usage.cached_input_tokens,
                "output": usage.output_tokens,
                "reasoning_output": usage.reasoning_output_tokens,
            }
            span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
            span.set_attribute("gen_ai.usage.cached_input_tokens", usage.cached_input_tokens)
            span.set_attribute("gen_ai.usage.reasoning_tokens", usage.reasoning_output_tokens)
        span.end()
        owner = self._owner
        owner.turns.add(1, {**self._attrs, "plexum.status": status})
        owner.duration.record(time.monotonic() - self._started, self._attrs)
        for kind, count in counts.items():
            owner.tokens.add(count, {**self._attrs, "plexum.token_type": kind})
        owner.running.add(-1)
        owner.spans.pop(str(self._attrs.get("plexum.turn_id")), None)


class OtelTelemetry:
    """A :class:`~.telemetry.Telemetry` that reports (the same methods)."""

    enabled = True

    def __init__(self, env: Mapping[str, str]) -> None:
        # The SDK reads its configuration from the process's environment (OTEL_*).
        os.environ.update({k: v for k, v in env.items() if k.startswith("OTEL_")})
        resource = Resource.create({"service.name": _NAME, "service.version": __version__})
        self._traces = TracerProvider(resource=resource)
        self._traces.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self._metrics = MeterProvider(
            resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]
        )
        self.tracer = self._traces.get_tracer(_NAME, __version__)
        meter = self._metrics.get_meter(_NAME, __version__)
        self.turns = meter.create_counter("plexum.turns", description="turns that ended")
        self.duration = meter.create_histogram("plexum.turn.duration", unit="s")
        self.ttft = meter.create_histogram("plexum.turn.time_to_first_token", unit="s")
        self.tokens = meter.create_counter("plexum.tokens", unit="{token}")
        self.tool_duration = meter.create_histogram("plexum.tool_call.duration", unit="s")
        self.running = meter.create_up_down_counter("plexum.turns.running")
        self.waiting = meter.create_up_down_counter("plexum.turns.waiting")
        self.spans: dict[str, Span] = {}  # running turns' spans, for their tool calls
        self._propagator = TraceContextTextMapPropagator()

    def turn(
        self, *, agent: str, turn_id: str, model: str | None, engine: str, traceparent: str | None
    ) -> _OtelTurn:
        attrs = attributes(agent=agent, turn_id=turn_id, model=model, engine=engine)
        parent = self._propagator.extract({"traceparent": traceparent}) if traceparent else None
        span = self.tracer.start_span("plexum.turn", context=parent, attributes=attrs)
        self.spans[turn_id] = span
        self.running.add(1)
        return _OtelTurn(self, span, attrs)

    @contextlib.contextmanager
    def tool_call(self, turn_id: str, name: str) -> Iterator[None]:
        turn = self.spans.get(turn_id)
        context = trace.set_span_in_context(turn) if turn is not None else None
        attrs = attributes(turn_id=turn_id, tool=name)
        started = time.monotonic()
        try:
            with self.tracer.start_as_current_span(
                "plexum.tool_call", context=context, attributes=attrs
            ):
                yield
        finally:
            self.tool_duration.record(time.monotonic() - started, {"plexum.tool": name})

    @contextlib.contextmanager
    def consume(self, agent: str) -> Iterator[None]:
        with self.tracer.start_as_current_span(
            "plexum.consume", attributes=attributes(agent=agent)
        ):
            yield

    def close(self) -> None:
        self._traces.force_flush(5_000)
        self._metrics.force_flush(5_000)
        self._traces.shutdown()
        self._metrics.shutdown()
