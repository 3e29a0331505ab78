"""The README's Python example runs as written, against the scripted model and the real codex."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plexum_openai_provider._bridge.names import mcp_namespace, server_name
from plexum_openai_provider.testing import FunctionCall, Message, ScriptedModelServer

README = Path(__file__).parent.parent.parent / "README.md"
pytestmark = pytest.mark.one_engine  # the example uses the default engine


def test_the_python_example_runs_as_written(
    tmp_path: Path, codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    [code] = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = tmp_path / "example.py"
    example.write_text(code)
    model_server.enqueue(
        FunctionCall(
            "get_weather",
            json.dumps({"city": "Paris"}),
            call_id="call_readme",
            namespace=mcp_namespace(server_name("cx")),
        ),
        Message("It is sunny in Paris."),
    )
    env = {**codex_env, "PLEXUM_SOCKET_DIR": str(tmp_path / "s")}
    done = subprocess.run(
        [sys.executable, str(example), str(workspace)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "It is sunny in Paris."
    assert lines[1].startswith("completed, Usage(input_tokens=200,")
    assert lines[2] == "ConsumeResult(consumed=['call_readme'], not_found=[])"
    outputs = model_server.requests[1].items_of_type("function_call_output")
    assert "Sunny in Paris" in json.dumps(outputs)
    # The example offers get_weather with the city its handler reads.
    [namespace] = [
        t for t in model_server.requests[0].body["tools"] if t.get("type") == "namespace"
    ]
    [offered] = namespace["tools"]
    assert offered["name"] == "get_weather"
    assert offered["parameters"]["required"] == ["city"]
    assert offered["parameters"]["properties"]["city"]["type"] == "string"
