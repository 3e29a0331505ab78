"""The commands people use, driven as a person would: chat in a real terminal (pexpect), doctor,
and run --demo."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import stat
import subprocess
import threading
import time
from pathlib import Path

import pexpect
import pytest

from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import Message, ScriptedModelServer, Wait
from tests.conftest import host_config
from tests.helpers import plugin_script
from tests.login_server import USER_CODE, LoginServer

PLUGIN = plugin_script()
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="
)
# The commands start their own provider with the default engine: nothing to vary here.
pytestmark = pytest.mark.one_engine


def demo_chat(tmp_path: Path) -> pexpect.spawn:
    """``chat --demo`` in a terminal of 50 x 200, for agent ``demo`` in ``tmp_path/agent``."""
    workspace = tmp_path / "agent"
    workspace.mkdir()
    return pexpect.spawn(
        PLUGIN,
        ["chat", "--demo", "--workspace", str(workspace), "--agent", "demo"],
        encoding="utf-8",
        timeout=60,
        dimensions=(50, 200),
    )


def test_chat_shows_an_agent_at_work(tmp_path: Path) -> None:
    """Its reasoning (dimmed), its plan, the running command with a spinner and the last line it
    printed, as it prints (chat runs on app-server, the default engine)."""
    chat = demo_chat(tmp_path)
    try:
        chat.expect("you> ")
        chat.sendline("work")
        chat.expect(r"\x1b\[2mthinking: Counting first, then a report\.")
        chat.expect(r"\[>\] count to three")
        chat.expect(r"running: for i in 1 2 3; do echo step \$i; sleep 0\.7; done  \| step 2")
        chat.expect(r"\[tool result \S+\] Chunk ID")
        chat.expect("you> ")
        chat.sendline("/quit")
        chat.expect(pexpect.EOF)
    finally:
        chat.close()
    assert chat.exitstatus == 0


def test_chat_demo_turn_tool_blocks_consume_and_resume(tmp_path: Path) -> None:
    chat = demo_chat(tmp_path)
    workspace = tmp_path / "agent"
    try:
        chat.expect("you> ")
        chat.sendline("hello there")
        chat.expect(r"codex> \(demo model\) You said: 'hello there'")
        chat.expect(r"\[usage\] input \d+")
        chat.expect("you> ")

        picture = workspace / "p.png"
        picture.write_bytes(PNG)
        chat.sendline(f"/image {picture}")
        chat.expect(r"\[image attached: .*p\.png; it goes with your next message\]")
        chat.expect("you> ")
        chat.sendline("what is this?")
        chat.expect(r"You said: 'what is this\?'\. I see 1 image\(s\)\.")
        chat.expect("you> ")

        chat.sendline("note buy milk")
        chat.expect(r"\[tool call (\S+)\] save_note \{\"text\": \"buy milk\"\}")
        block_id = chat.match.group(1)
        chat.expect(r"\[tool result \S+\].*saved note #1: buy milk")
        chat.expect("you> ")

        chat.sendline("/blocks")
        chat.expect(rf"{re.escape(block_id)}\s+save_note\s+\(\d+ chars\)")
        chat.expect("you> ")

        chat.sendline(f"/consume {block_id} nope")
        chat.expect(rf"consumed: {re.escape(block_id)}; not found: nope")
        chat.expect("you> ")
        chat.sendline("/blocks")
        chat.expect(rf"{re.escape(block_id)}\s+save_note\s+\(consumed\)")
        chat.expect("you> ")

        # The resumed turn: the model was sent the marker, not the note.
        chat.sendline("remember")
        chat.expect(r"save_note \{\} → '\.\.\.\(tool called\)'")
        chat.expect("you> ")

        chat.sendline("/reset")
        chat.expect("thread forgotten")
        chat.expect("you> ")
        chat.sendline("remember")
        chat.expect("I was sent no earlier tool calls")
        chat.expect("you> ")
        chat.sendline("/quit")
        chat.expect(pexpect.EOF)
    finally:
        chat.close()
    assert chat.exitstatus == 0
    records = [
        json.loads(line)
        for line in (workspace / ".plexum-chat" / "dynamic.jsonl").read_text().splitlines()
    ]
    assert [r["kind"] for r in records] == ["call", "result", "consume"]
    assert {r["block_id"] for r in records} == {block_id}


def test_a_line_typed_while_the_agent_answers_joins_its_turn(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    """(app-server, chat's engine.) The model holds its first answer until the chat has said
    that the line joined the turn (no race with an answer that ends first); the line then
    reaches the model in the same turn's next request."""
    release = threading.Event()
    model_server.enqueue(Wait(release, Message("counting")), Message("stopped, as you asked"))
    chat = pexpect.spawn(
        PLUGIN,
        ["chat", "--workspace", str(workspace)],
        encoding="utf-8",
        timeout=60,
        env=codex_env,
        dimensions=(50, 200),
    )
    try:
        chat.expect("you> ")
        chat.sendline("slowly count")
        deadline = time.monotonic() + 60
        while not model_server.requests:  # the turn runs: codex has asked the model
            assert time.monotonic() < deadline, "codex never asked the model"
            time.sleep(0.02)
        chat.sendline("and then stop")
        chat.expect(r"\[sent while the agent answers: it joins the running turn, or runs next\]")
        chat.expect(r"\[it joined the running turn chat-\d+-1\]")
        release.set()
        chat.expect(r"codex> stopped, as you asked")
        chat.expect("you> ")
        chat.sendline("/quit")
        chat.expect(pexpect.EOF)
    finally:
        release.set()
        chat.close()
    assert chat.exitstatus == 0
    first, second = model_server.requests
    assert first.user_texts()[-1] == "slowly count"
    assert second.user_texts()[-1] == "and then stop"  # the same turn's next request
    assert sum(t == "slowly count" for t in second.user_texts()) == 1


def test_run_demo_needs_no_login_and_a_demo_workspace_keeps_its_thread(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    workspace = tmp_path / "ws"
    workspace.mkdir()
    for n, message in enumerate(["hi there", "and again"], 1):
        done = subprocess.run(
            [PLUGIN, "run", "--demo", "--workspace", str(workspace), message],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == (
            f"(demo model) You said: {message!r}. Messages from you in this thread: {n}.\n"
        )
        # No login warning, no codex_warning about the scripted model's metadata, no
        # resume_failed: the usage line alone.
        assert done.stderr == "[usage] input 100 (cached 0), output 10 (reasoning 0)\n"
    assert list((tmp_path / "state" / "plexum-openai-provider" / "demo").glob("ws-*/codex-home"))


def _plugin_of(pid: int) -> int:
    """The plugin process a chat started."""
    children = (Path(f"/proc/{pid}/task/{pid}/children")).read_text().split()
    plugins = [
        int(c)
        for c in children
        if b"plexum_openai_provider" in Path(f"/proc/{c}/cmdline").read_bytes()
    ]
    assert len(plugins) == 1, children
    return plugins[0]


def test_chat_in_a_terminal_ctrl_c_cancels_a_turn_and_the_chat_goes_on(tmp_path: Path) -> None:
    """Ctrl-C during a turn cancels it through the protocol: the same plugin (in a process group
    of its own, which the terminal's interrupt does not reach) serves the next message; a line
    that starts with // sends one that starts with /; a message whose image is refused is kept;
    Ctrl-C at the prompt ends the chat quietly."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "notes.txt").write_text("not an image")
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    chat = pexpect.spawn(
        PLUGIN,
        ["chat", "--demo", "--workspace", str(workspace)],
        encoding="utf-8",
        timeout=60,
        env=env,
        dimensions=(50, 200),
    )
    try:
        chat.expect("you> ")
        plugin = _plugin_of(chat.pid)
        assert os.getpgid(plugin) != os.getpgid(chat.pid)
        chat.sendline("slowly count")
        chat.expect(r"codex> \(demo model\) Slowly, ")
        chat.sendintr()
        chat.expect(r"\[cancelling the turn\]")
        chat.expect(r"\[turn cancelled\]")
        chat.expect("you> ")
        chat.sendline("hello again")
        chat.expect(r"You said: 'hello again'\. Messages from you in this thread: 2\.")
        chat.expect("you> ")
        assert _plugin_of(chat.pid) == plugin

        chat.sendline("//etc/passwd: what is it?")
        chat.expect(r"You said: '/etc/passwd: what is it\?'")
        chat.expect("you> ")

        chat.sendline(f"/image {workspace / 'notes.txt'}")
        chat.expect("you> ")
        chat.sendline("what is this?")
        chat.expect(r"\[refused\] .*is not an image")
        chat.expect(r"your message was not sent; /retry sends it again")
        chat.expect("you> ")
        chat.sendline("/retry")
        chat.expect(r"You said: 'what is this\?'\. Messages from you in this thread: 4\.")
        chat.expect("you> ")

        chat.sendintr()
        chat.expect(pexpect.EOF)
    finally:
        chat.close()
    assert chat.exitstatus == 0
    assert "Traceback" not in (chat.before or "")
    assert "codex_warning" not in (chat.before or "")


def test_chat_ends_quietly_on_ctrl_d(tmp_path: Path) -> None:
    chat = pexpect.spawn(PLUGIN, ["chat", "--demo"], encoding="utf-8", timeout=60)
    try:
        chat.expect("you> ")
        chat.sendeof()
        chat.expect(pexpect.EOF)
        assert chat.before.strip() == ""
    finally:
        chat.close()
    assert chat.exitstatus == 0


def test_run_in_a_terminal_ctrl_c_cancels_the_turn(tmp_path: Path) -> None:
    run = pexpect.spawn(PLUGIN, ["run", "--demo", "slowly count"], encoding="utf-8", timeout=60)
    try:
        run.expect(r"\(demo model\) Slowly, ")
        run.sendintr()
        run.expect(pexpect.EOF)
        out = run.before
    finally:
        run.close()
    assert run.exitstatus == 130, out
    assert "[error cancelled] interrupted (Ctrl-C)" in out and "turn cancelled" in out
    assert "Traceback" not in out and "three." not in out


def test_the_cli_in_a_terminal(tmp_path: Path) -> None:
    """--version; global options after the command; an unknown PLEXUM_LOG_LEVEL is said; the
    bare command in a terminal says what it is instead of waiting for JSON."""
    from plexum_openai_provider import __version__

    done = subprocess.run([PLUGIN, "--version"], capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, f"plexum-openai-provider-plugin {__version__}\n")
    env = {**os.environ, "PLEXUM_LOG_LEVEL": "verbose"}
    done = subprocess.run(
        [PLUGIN, "run", "--demo", "-v", "hi"], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert " DEBUG " in done.stderr  # -v after the command
    done = subprocess.run(
        [PLUGIN, "run", "--demo", "hi"], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.stderr.startswith(
        "warning: PLEXUM_LOG_LEVEL='verbose' is not a log level (debug, info, warning, error);"
        " using warning\n"
    )
    # In a terminal stdout and stderr share the screen: the usage line starts a line of its own.
    run = pexpect.spawn(PLUGIN, ["run", "--demo", "hi"], encoding="utf-8", timeout=60)
    run.expect(pexpect.EOF)
    run.close()
    assert run.exitstatus == 0
    assert run.before.replace("\r\n", "\n") == (
        "(demo model) You said: 'hi'. Messages from you in this thread: 1.\n"
        "[usage] input 100 (cached 0), output 10 (reasoning 0)\n"
    )
    bare = pexpect.spawn(PLUGIN, [], encoding="utf-8", timeout=30)
    bare.expect(pexpect.EOF)
    bare.close()
    assert bare.exitstatus == 2
    assert "the Plexum provider plugin for the OpenAI Codex CLI" in bare.before
    assert "plexum-openai-provider-plugin --help" in bare.before


def test_doctor_reports_problems_with_fixes(tmp_path: Path, codex_env: dict[str, str]) -> None:
    home = Path(codex_env["CODEX_HOME"])
    (home / "config.toml").write_text(
        (home / "config.toml").read_text()
        + '\n[mcp_servers.plexum-host-old]\ncommand = "/gone/plugin"\nargs = ["mcp-host"]\n'
        + '[mcp_servers.plexum-host-old.env]\nPLEXUM_MCP_AGENT_ID = "old"\n'
    )
    sockets = tmp_path / "sockets"
    sockets.mkdir(mode=0o755)
    # A pyenv rehash lock left by a shell that was killed: every login shell waits 60 s for it.
    lock = tmp_path / "pyenv" / "shims" / ".pyenv-shim"
    lock.parent.mkdir(parents=True)
    lock.touch()
    os.utime(lock, (time.time() - 600, time.time() - 600))
    env = {
        **codex_env,
        "PLEXUM_SOCKET_DIR": str(sockets),
        "PYENV_ROOT": str(lock.parent.parent),
        "SHELL": "/bin/bash",
    }
    done = subprocess.run([PLUGIN, "doctor"], capture_output=True, text=True, env=env, timeout=60)
    out = done.stdout
    assert done.returncode == 1, out
    assert re.search(r"^ok\s+codex \d+\.\d+\.\d+ runs: ", out, re.M)
    assert re.search(rf"^ok\s+CODEX_HOME {re.escape(str(home))} \(from \$CODEX_HOME\)$", out, re.M)
    assert re.search(
        r"^problem\s+codex is not logged in\n\s+fix: run `plexum-openai-provider-plugin login`",
        out,
        re.M,
    )
    assert re.search(r"^info\s+plexum-host-old in .* is left from an earlier version", out, re.M)
    assert re.search(rf"^problem\s+socket folder {re.escape(str(sockets))} has mode 755", out, re.M)
    assert re.search(
        rf"^problem\s+a stale pyenv lock {re.escape(str(lock))} \(10 min old", out, re.M
    )
    assert re.search(rf"^\s+fix: rm {re.escape(str(lock))}$", out, re.M)
    # Its CODEX_HOME is under the temporary folder: codex makes no helper folder there.
    assert re.search(
        r"^problem\s+limits: each agent's commands: 1024 processes, .* CODEX_HOME is under the"
        r" temporary folder",
        out,
        re.M,
    )
    assert "4 problem(s)" in out

    # A login shell that takes 1.5 s to start: every new thread's first command waits for it.
    lock.unlink()
    (Path(codex_env["HOME"]) / ".bash_profile").write_text("sleep 1.5\n")
    done = subprocess.run([PLUGIN, "doctor"], capture_output=True, text=True, env=env, timeout=60)
    assert re.search(
        r"^problem\s+login shell `/bin/bash -lc true` took 1\.\d\d s", done.stdout, re.M
    )

    # With an API key login, a private socket folder and a quick login shell: all good...
    (Path(codex_env["HOME"]) / ".bash_profile").unlink()
    sockets.chmod(0o700)
    secret = "sk-doctor-test-0123456789abcdef"
    subprocess.run(
        [PLUGIN, "login", "--with-api-key"],
        input=secret,
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    # ... and a temporary folder that does not hold CODEX_HOME (as ~/.codex is not in /tmp).
    (tmp_path / "tmpdir").mkdir()
    env["TMPDIR"] = str(tmp_path / "tmpdir")
    done = subprocess.run([PLUGIN, "doctor"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stdout
    assert re.search(r"^ok\s+limits: each agent's commands: 1024 processes, ", done.stdout, re.M)
    assert "codex is logged in (using an API key)" in done.stdout
    assert secret not in done.stdout + done.stderr and "all good" in done.stdout
    assert re.search(r"^ok\s+login shell `/bin/bash -lc true` took 0\.\d\d s", done.stdout, re.M)


def test_login_status_logout_and_device_auth_through_the_plugin(
    tmp_path: Path, codex_env: dict[str, str], workspace: Path
) -> None:
    home = tmp_path / "daemon-codex-home"  # not there yet, as on a fresh install
    env = {**codex_env, "CODEX_HOME": str(home)}

    def plugin(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PLUGIN, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
        )

    status = plugin("login", "status")
    assert status.returncode == 1 and "Not logged in" in status.stdout + status.stderr
    assert f"CODEX_HOME {home}" in status.stderr  # which one, said every time
    assert home.is_dir() and stat.S_IMODE(home.stat().st_mode) == 0o700

    secret = "sk-login-test-0123456789abcdef"
    assert plugin("login", "--with-api-key", stdin=secret).returncode == 0
    status = plugin("login", "status")
    assert status.returncode == 0 and "Logged in using an API key" in status.stderr
    assert secret not in status.stdout + status.stderr
    assert plugin("logout").returncode == 0
    assert plugin("login", "status").returncode == 1

    # ChatGPT's device code, as on a headless machine (the stand-in login server answers).
    with LoginServer() as server:
        issuer = f"--codex-option={server.url}"
        login = plugin("login", "--device-auth", "--codex-option=--experimental_issuer", issuer)
        assert login.returncode == 0, login.stdout + login.stderr
        assert USER_CODE in login.stdout and f"{server.url}/codex/device" in login.stdout
        assert [path for path, _ in server.requests] == [
            "/api/accounts/deviceauth/usercode",
            "/api/accounts/deviceauth/token",
            "/api/accounts/deviceauth/token",
            "/oauth/token",
        ]
    status = plugin("login", "status")
    assert status.returncode == 0 and "Logged in using ChatGPT" in status.stderr
    stored = json.loads((home / "auth.json").read_text())
    assert stored["tokens"]["refresh_token"] == "refresh-1"

    async def initialize() -> dict[str, object]:
        async with await PluginClient.spawn(env=env) as client:
            return await client.initialize(host_config())

    assert asyncio.run(initialize())["login"] == {"logged_in": True, "method": "chatgpt"}


def test_chat_says_up_front_that_codex_is_not_logged_in(
    codex_env: dict[str, str], workspace: Path
) -> None:
    chat = pexpect.spawn(
        PLUGIN, ["chat", "--workspace", str(workspace)], encoding="utf-8", timeout=60, env=codex_env
    )
    try:
        chat.expect(r"warning: codex is not logged in: turns fail `unauthorized`")
        chat.expect(r"Fix: plexum-openai-provider-plugin login")
        chat.expect("you> ")
        chat.sendline("/quit")
        chat.expect(pexpect.EOF)
    finally:
        chat.close()
    assert chat.exitstatus == 0
