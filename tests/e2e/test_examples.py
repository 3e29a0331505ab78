"""The examples a host author starts from run as the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
# The example picks its own engine (the default): nothing to vary here.
pytestmark = pytest.mark.one_engine


def test_the_host_example_runs_against_the_demo_model() -> None:
    """examples/host.py: two agents, a host tool, a steer and a consume, through PluginClient."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "host.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("plugin ") and lines[0].endswith("engine app-server")
    assert lines[1:] == [
        "alice> note buy milk",
        '  alice: tool call save_note {"text": "buy milk"} (block call_2)',
        "  alice: tool result saved note #1: buy milk",
        "  alice says: The tool answered: saved note #1: buy milk",
        "  alice: turn completed",
        "host notebook: ['buy milk']",
        "bob> slowly count",
        "bob> and then stop   (sent while bob answers: when_busy steer)",
        "  bob: turn steered into bob-1",
        "  bob says: (demo model) Slowly, (demo model) You said: 'and then stop'. Messages from"
        " you in this thread: 2.",
        "  bob: turn completed",
        "host consumes alice's blocks ['call_2']",
        "  consumed ['call_2'], not found []",
        "alice> remember",
        "  alice says: Earlier tool calls I was sent:",
        "- save_note {} → '...(tool called)'",
        "  alice: turn completed",
        "plugin shut down",
    ]
    assert done.stderr == ""
