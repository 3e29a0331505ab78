"""`plexum-openai-provider-plugin run` as a person runs it: a real process, the real codex."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import pytest

from plexum_openai_provider.testing import Failed, ScriptedModelServer
from tests.conftest import records_of
from tests.helpers import plugin_script

PLUGIN = plugin_script()
# The commands start their own provider with the default engine: nothing to vary here.
pytestmark = pytest.mark.one_engine


LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ")


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLUGIN, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_run_streams_the_answer_and_resumes(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    first = run(["run", "--workspace", str(workspace), "hello"], codex_env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "echo: hello\n"
    # codex is not logged in here (the scripted model needs no login): said before the turn
    # (log lines aside: the tests' CODEX_HOME is in /tmp, where the limits warn they cannot attach).
    said = "".join(line for line in first.stderr.splitlines(True) if not LOG_LINE.match(line))
    assert said.startswith(
        "warning: codex is not logged in: turns fail `unauthorized` unless codex's model provider"
        " needs no login. Fix: plexum-openai-provider-plugin login"
    )
    assert "[usage] input 100 (cached 0), output 10 (reasoning 0)" in first.stderr

    second = run(["run", "--json", "--workspace", str(workspace), "--", "-dash first"], codex_env)
    assert second.returncode == 0, second.stderr
    lines = [json.loads(line) for line in second.stdout.splitlines()]
    # --json prints every event there is: the context window comes before the usage.
    assert [line["type"] for line in lines] == [
        "notice",
        "text_delta",
        "context",
        "usage",
        "result",
    ]
    delta = lines[1]
    assert (delta["text"], delta["phase"]) == ("echo: -dash first", None) and delta["message_id"]
    result = lines[-1]
    assert result["status"] == "completed"
    assert (records_of(codex_env, workspace) / "thread").read_text().strip() == result["thread_id"]
    assert model_server.requests[-1].user_texts()[-2:] == ["hello", "-dash first"]


def test_run_takes_a_model_and_an_effort(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    done = run(
        ["run", "--workspace", str(workspace), "--model", "gpt-5.5", "--effort", "high", "hi"],
        codex_env,
    )
    assert done.returncode == 0, done.stderr
    body = model_server.requests[-1].body
    assert (body["model"], body["reasoning"]["effort"]) == ("gpt-5.5", "high")
    done = run(
        ["run", "--workspace", str(workspace), "--model", "gpt-5.5", "--effort", "ultra", "hi"],
        codex_env,
    )
    assert done.returncode == 2
    assert "effort 'ultra' is not a reasoning effort of gpt-5.5" in done.stderr
    assert len(model_server.requests) == 1


def test_run_reads_the_message_from_stdin(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    done = run(["run", "--workspace", str(workspace), "-"], codex_env, stdin="from\nstdin\n")
    assert done.returncode == 0, done.stderr
    assert model_server.requests[-1].last_user_text() == "from\nstdin\n"


def test_failed_turn_exits_non_zero(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    model_server.enqueue(Failed("nope"))
    done = run(["run", "--json", "--workspace", str(workspace), "hi"], codex_env)
    assert done.returncode == 1
    last = json.loads(done.stdout.splitlines()[-1])
    assert last["status"] == "failed" and last["error"]["code"] == "codex_failed"
    assert "nope" in last["error"]["message"]


def test_bad_config_and_workspace_are_clear_errors(
    codex_env: dict[str, str], workspace: Path, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"idle_timeout_s": "soon"}')
    done = run(["run", "--config", str(config), "--workspace", str(workspace), "hi"], codex_env)
    assert done.returncode == 2
    assert "idle_timeout_s" in done.stderr and '"soon"' in done.stderr

    done = run(["run", "--workspace", str(tmp_path / "missing"), "hi"], codex_env)
    assert done.returncode == 2
    assert "agent.workspace" in done.stderr and "does not exist" in done.stderr

    config.write_text('{"binary": "/nonexistent/codex"}')
    done = run(["run", "--config", str(config), "--workspace", str(workspace), "hi"], codex_env)
    assert done.returncode == 2 and "/nonexistent/codex" in done.stderr
    assert model_server.requests == []


def test_run_takes_instructions_and_images(
    codex_env: dict[str, str], workspace: Path, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    picture = workspace / "p.png"
    picture.write_bytes(
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="
        )
    )
    persona = tmp_path / "persona.txt"
    persona.write_text("You are Ada. RUN-PERSONA")
    args = ["run", "--workspace", str(workspace), "--system", f"@{persona}"]
    done = run([*args, "--image", str(picture), "--image", str(picture), "look"], codex_env)
    assert done.returncode == 0, done.stderr
    request = model_server.requests[-1]
    developer = [i for i in request.input if i.get("role") == "developer"]
    assert any("RUN-PERSONA" in json.dumps(i) for i in developer)
    last = [i for i in request.input if i.get("role") == "user"][-1]
    assert [p["type"] for p in last["content"]].count("input_image") == 2
    missing = run([*args[:3], "--system", "@/nonexistent", "x"], codex_env)
    assert missing.returncode == 2 and "/nonexistent" in missing.stderr


def test_an_empty_message_is_refused(codex_env: dict[str, str], workspace: Path) -> None:
    for args, stdin, where in (([""], "", "the message argument"), (["-"], " \n", "stdin")):
        done = run(["run", "--workspace", str(workspace), *args], codex_env, stdin=stdin)
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == f"error: the message is empty ({where}): there is nothing to send\n"
    assert not (workspace / ".plexum-codex-session").exists()
