"""``PLEXUM_LOG_FORMAT=json``: one JSON object a line, with the agent and turn of a turn's lines;
the default stays human."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

THREAD = "01a20aa4-ab5b-7f40-9ba8-8bc39951a3e1"

SCRIPT = """
import asyncio, logging, sys
from pathlib import Path
from plexum_openai_provider.cli import _setup_logging
from plexum_openai_provider import AgentContext, HostConfig, TurnRequest, Usage
from plexum_openai_provider.testing import FakeEngine, FakeRun, exec_lines
from tests.helpers import provider_on

_setup_logging(logging.INFO)
logging.getLogger("plexum_openai_provider").info("before any turn")

async def main():
    tmp = Path(sys.argv[1])
    engine = FakeEngine([FakeRun(exec_lines.turn(sys.argv[2], "hi", Usage(1, 0, 1, 0)))])
    provider = provider_on(engine, tmp, HostConfig())
    (tmp / "ws").mkdir()
    turn = await provider.start_turn(TurnRequest(AgentContext("ada", tmp / "ws"), "hi", turn_id="t-9"))
    [e async for e in turn]
    await turn.result()
    await provider.close()

asyncio.run(main())
"""


def _run(tmp_path: Path, fmt: str | None) -> list[str]:
    env = {"PYTHONPATH": ":".join(sys.path), "PATH": "/usr/bin:/bin"}
    if fmt is not None:
        env["PLEXUM_LOG_FORMAT"] = fmt
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), THREAD],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent.parent,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


def test_json_logs_name_the_agent_and_turn(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    lines = [json.loads(line) for line in _run(tmp_path / "a", "json")]
    first = lines[0]
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["message"] == "before any turn" and first["level"] == "info"
    [ended] = [line for line in lines if "completed in" in line["message"]]
    assert ended["agent"] == "ada" and ended["turn"] == "t-9"
    assert ended["logger"] == "plexum_openai_provider._turn.runner"
    (tmp_path / "b").mkdir()
    human = _run(tmp_path / "b", None)
    assert human and not human[0].startswith("{") and "INFO plexum_openai_provider" in human[0]
