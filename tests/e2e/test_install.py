"""The production install: the wheel `python -m build` makes, installed into a fresh venv as a
daemon's would be, logs in, passes doctor and runs a turn, with nothing from this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.one_engine


@pytest.mark.timeout(900)  # pip may download the dependencies
def test_the_built_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, ROOT],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = dist.glob("plexum_openai_provider-*-py3-none-any.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = subprocess.run(
        [env_dir / "bin" / "python", "-m", "pip", "install", "--quiet", wheel],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr
    command = env_dir / "bin" / "plexum-openai-provider-plugin"
    assert not (env_dir / "bin" / "codex").exists()  # the pinned codex is the package's own
    # A daemon's environment: no PATH to this checkout's tools, a HOME and CODEX_HOME of its own.
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "CODEX_HOME": str(home / "codex"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        # A temporary folder that does not hold CODEX_HOME, as a daemon's /tmp does not hold its
        # ~/.codex (codex makes its helper folder, which bounds the agents' commands, only then).
        "TMPDIR": str(tmp_path / "tmp"),
    }
    (tmp_path / "run").mkdir(mode=0o700)
    (tmp_path / "tmp").mkdir()

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [command, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
        )

    login = run("login", "--with-api-key", stdin="sk-install-test-0123456789")
    assert login.returncode == 0, login.stderr
    doctor = run("doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert f"runs: {env_dir}/lib/" in doctor.stdout and "all good" in doctor.stdout
    demo = run("run", "--demo", "hello from the wheel")
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout == (
        "(demo model) You said: 'hello from the wheel'. Messages from you in this thread: 1.\n"
    )
    assert os.fspath(ROOT) not in doctor.stdout  # nothing of the checkout was used
