"""Telemetry is off and costs nothing unless an OTLP endpoint is named: the SDK is not even
imported; with one, a turn on the fake seam reports its span and waits in a span of its own."""

from __future__ import annotations

import subprocess
import sys

from plexum_openai_provider.telemetry import NOOP, TurnTrace, telemetry_from_env, traced


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
