"""Agents confined to their own workspace: a prompt-injected agent tries every way out.

The scripted model makes the attacker agent run a script (in its own workspace) that tries, while
another agent (the victim) is served by the same plugin: to read the victim's workspace, codex's
credentials and every agent's sessions; to write outside its workspace; to call the victim's host
tool through the victim's socket, as the victim; to open a TCP connection to 127.0.0.1; to read the
plugin's environment (its own, and any process's it can see); to point its own thread record (in
the plugin's state folder) at the victim's thread; to read what lies beside the daemon's
toolchains in the home (another agent's files under ``~/.local/share``,
``~/.cargo/credentials.toml``); to hard-link the victim's file; to
replace its ``.git`` (and the other names codex binds specially) by links between two commands,
or to start in a workspace whose ``.git`` already is a link or a ``gitdir:`` file. Under
``sandbox: "workspace"`` every one fails while the agent's own work succeeds (its workspace,
python3 from the daemon's PATH, a pipx-style tool from ``~/.local/bin``, ``git init`` and commit,
a clone and a commit in it, the variables the operator passes, its own host tool). The control,
``sandbox: "none"``, shows that the same script does reach (so the test can fail).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

from plexum_openai_provider import AgentContext, ToolSpec
from plexum_openai_provider._bridge.names import key_path, mcp_namespace, server_name, socket_path
from plexum_openai_provider._jsonrpc import JsonRpcError
from plexum_openai_provider._turn.thread_store import SESSION_FILE
from plexum_openai_provider.plugin.client import PluginClient
from plexum_openai_provider.testing import FunctionCall, Message, ScriptedModelServer, Wait
from tests.conftest import host_config, records_of
from tests.helpers import wait_until

SECRET = "VICTIM-SECRET-4242"
CREDENTIALS = "CREDENTIALS-SK-0000"
ENV_SECRET = "ENV-SECRET-7777"
# The daemon's secrets, whatever their names.
SECRET_ENV = {
    "SLACK_BOT_TOKEN": ENV_SECRET,
    "DATABASE_PASSWORD": ENV_SECRET,
    "PLEXUM_TEST_SETTING": ENV_SECRET,
}
# Each vector prints one line: "<name> reached <what>" or "<name> refused <why>".
ATTACK = r"""
import json, os, socket, subprocess, sys
P = json.loads(sys.argv[1])
def report(name, reached, detail):
    print(name, "reached" if reached else "refused", str(detail).replace("\n", " ")[:120])
def attempt(name, fn):
    try:
        reached, detail = fn()
    except Exception as exc:
        reached, detail = False, f"{type(exc).__name__}: {exc}"
    report(name, reached, detail)
def read(path):
    with open(path) as f:
        return f.read()
print("ATTACK-START")
attempt("read_other_workspace", lambda: (P["secret"] in read(P["victim"] + "/secret.txt"), "read"))
attempt("read_credentials", lambda: (P["credentials"] in read(P["codex_home"] + "/auth.json"), "read"))
attempt("list_sessions", lambda: (True, os.listdir(P["codex_home"] + "/sessions")))
def write_outside():
    with open(P["victim"] + "/pwned", "w") as f:
        f.write("pwned")
    return True, "written"
attempt("write_outside", write_outside)
def other_agents_tool():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(P["victim_socket"])
    try:
        key = read(P["victim_key"]).strip()
    except OSError:
        key = None
    s.sendall(json.dumps({"agent_id": "victim", "key": key}).encode() + b"\n")
    f = s.makefile("rwb")
    answer = json.loads(f.readline())
    if not answer.get("ok"):
        return False, answer
    def rpc(message):
        f.write(json.dumps(message).encode() + b"\n")
        f.flush()
        return json.loads(f.readline()) if "id" in message else None
    rpc({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}})
    rpc({"jsonrpc": "2.0", "method": "notifications/initialized"})
    result = rpc({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "post_message", "arguments": {"text": "posted by the attacker"}}})
    return True, result
attempt("other_agents_tool", other_agents_tool)
def tcp():
    socket.create_connection(("127.0.0.1", P["port"]), timeout=5).close()
    return True, "connected"
attempt("tcp_localhost", tcp)
attempt("plugin_environ", lambda: ("CODEX_HOME=" in read(f"/proc/{P['plugin']}/environ"), "read"))
def redirect():
    with open(P["session_file"], "w") as f:
        f.write(P["victim_thread"] + "\n")
    return True, "written"
attempt("redirect_thread", redirect)
attempt("env_secret", lambda: (P["env_secret"] in str(os.environ), sorted(os.environ)))
def proc_environ():
    seen = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            seen.append((pid, P["env_secret"].encode() in read_bytes(f"/proc/{pid}/environ")))
        except OSError:
            pass
    return any(hit for _, hit in seen), seen
def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()
attempt("proc_environ", proc_environ)
attempt("home_credentials", lambda: ("token" in read(P["home"] + "/.cargo/credentials.toml"), "read"))
attempt("home_neighbours", lambda: (P["secret"] in read(P["home"] + "/.local/share/other-agent/secret.txt"), "read"))
def hard_link():
    os.link(P["victim"] + "/secret.txt", "hl")
    return P["secret"] in read("hl"), "linked"
attempt("hard_link", hard_link)
# The agent's own work.
with open("own.txt", "w") as f:
    f.write("own work\n")
report("own_files", read("own.txt") == "own work\n", "workspace")
out = subprocess.run(["python3", "-c", "import sys; print(6 * 7, sys.executable)"], capture_output=True, text=True)
report("own_python", out.stdout.startswith("42 "), out.stdout.strip() or out.stderr.strip())
git = "git init -q . && echo x > tracked && git add tracked && git -c user.name=A -c user.email=a@b commit -qm c && git log --oneline | wc -l"
out = subprocess.run(["sh", "-c", git], capture_output=True, text=True)
report("own_git", out.stdout.strip() == "1", out.stdout.strip() or out.stderr.strip())
clone = "git clone -q origin clone && cd clone && echo y >> f && git -c user.name=A -c user.email=a@b commit -qam c2 && git log --oneline | wc -l"
out = subprocess.run(["sh", "-c", clone], capture_output=True, text=True)
report("own_clone", out.stdout.strip() == "2", out.stdout.strip() or out.stderr.strip())
out = subprocess.run([P["home"] + "/.local/bin/hometool"], capture_output=True, text=True)
report("own_path_tool", out.stdout.strip() == "hometool ok", out.stdout.strip() or out.stderr.strip())
report("own_env", os.environ.get("AGENT_VISIBLE") == "visible", os.environ.get("AGENT_SET"))
"""
VECTORS = [
    "read_other_workspace",
    "read_credentials",
    "list_sessions",
    "write_outside",
    "other_agents_tool",
    "tcp_localhost",
    "plugin_environ",
    "redirect_thread",
    "env_secret",
    "proc_environ",
    "home_credentials",
    "home_neighbours",
    "hard_link",
]
OWN_WORK = ["own_files", "own_python", "own_git", "own_clone", "own_path_tool", "own_env"]


def outcomes(output: str) -> dict[str, str]:
    assert "ATTACK-START" in output, output
    out = {}
    for line in output.splitlines():
        name, _, rest = line.partition(" ")
        if name in VECTORS + OWN_WORK:
            out[name] = rest
    assert sorted(out) == sorted(VECTORS + OWN_WORK), output
    return out


@pytest.mark.parametrize("sandbox", ["workspace", "none"])
async def test_a_confined_agent_reaches_nothing_but_its_own_work(
    codex_env: dict[str, str],
    tmp_path: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
    sandbox: str,
) -> None:
    # The victim's workspace lies in a folder the operator made readable: left out for others.
    shared = tmp_path / "shared"
    victim, attacker = shared / "victim", tmp_path / "attacker"
    for folder in (victim, attacker):
        folder.mkdir(parents=True)
    (victim / "secret.txt").write_text(SECRET + "\n")
    (codex_home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": CREDENTIALS}))
    origin = attacker / "origin"  # a repository the agent clones
    subprocess.run(["git", "init", "-q", str(origin)], check=True)
    (origin / "f").write_text("x\n")
    git = ["git", "-C", str(origin), "-c", "user.name=A", "-c", "user.email=a@b"]
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "c1"], check=True)
    home = Path(codex_env["HOME"])
    path_tool = toolchain_home(home, SECRET)
    posted: list[dict[str, Any]] = []
    socket_dir = tmp_path / "sockets"
    env = {
        **codex_env,
        **SECRET_ENV,
        "AGENT_VISIBLE": "visible",
        "PLEXUM_SOCKET_DIR": str(socket_dir),
        "PATH": f"{path_tool}:{home}/.cargo/bin:{codex_env['PATH']}",
    }
    tools = {
        "post_message": lambda args: posted.append(args) or "posted",
        "own_tool": lambda args: posted.append({"own": args}) or "done",
    }
    async with await PluginClient.spawn(env=env, tools=tools) as plugin:
        agent_env = {"pass": ["AGENT_VISIBLE"], "set": {"AGENT_SET": "set"}}
        init = await plugin.initialize(
            host_config(sandbox=sandbox, sandbox_readable=[str(shared)], agent_env=agent_env)
        )
        assert init["sandbox"]["mode"] == sandbox
        readable = init["sandbox"]["readable"]
        print(f"{sandbox}: readable {readable}")
        # The victim's turn runs (its model answers when the attack is over) while the attacker's
        # turn tries its way out.
        release = threading.Event()
        model_server.enqueue(Wait(release, Message("hello")))
        victim_turn = plugin.start_turn(
            "t-v", AgentContext("victim", victim), "hi", tools=[ToolSpec("post_message")]
        )
        await wait_until(lambda: len(model_server.requests) == 1)
        victim_thread = (records_of(env, victim) / SESSION_FILE).read_text().strip()
        params = {
            "secret": SECRET,
            "credentials": CREDENTIALS,
            "victim": str(victim),
            "codex_home": str(codex_home),
            "victim_socket": str(socket_path("victim", codex_home, socket_dir)),
            "victim_key": str(key_path(socket_path("victim", codex_home, socket_dir))),
            "port": model_server.port,
            "plugin": plugin.process.pid,
            "session_file": str(records_of(env, attacker) / SESSION_FILE),
            "victim_thread": victim_thread,
            "env_secret": ENV_SECRET,
            "home": str(home),
        }
        (attacker / "attack.py").write_text(textwrap.dedent(ATTACK))
        command = f"python3 attack.py {shlex.quote(json.dumps(params))}"
        own = FunctionCall("own_tool", "{}", namespace=mcp_namespace(server_name("attacker")))
        model_server.enqueue(
            [FunctionCall("exec_command", json.dumps({"cmd": command}), call_id="attack"), own],
            Message("done"),
        )
        turn = plugin.start_turn(
            "t-a", AgentContext("attacker", attacker), "go", tools=[ToolSpec("own_tool")]
        )
        result = await turn.result()
        assert result.status == "completed", result
        release.set()
        assert (await victim_turn.result()).status == "completed"
    sent = {
        item["call_id"]: item["output"]
        for item in model_server.requests[-1].items_of_type("function_call_output")
    }
    seen = outcomes(output_text(sent["attack"]))
    print("\n".join(f"{sandbox}: {name} {what}" for name, what in seen.items()))
    for name in OWN_WORK:
        assert seen[name].startswith("reached"), (name, seen[name])
    assert {"own": {}} in posted  # its own host tool
    victim_posts = [p for p in posted if "text" in p]
    if sandbox == "workspace":
        daemons_python = subprocess.run(
            ["python3", "-c", "import sys; print(sys.executable)"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert seen["own_python"].split()[2] == daemons_python  # the daemon's PATH works
        for name in VECTORS:
            assert seen[name].startswith("refused"), (name, seen[name])
        assert not (victim / "pwned").exists()
        assert seen["own_env"].endswith(" set")  # agent_env's values reach it too
        # What the PATH's programs resolve into, never the folders beside them.
        assert str(path_tool) in readable and str(shared) in readable
        assert not {str(home), f"{home}/.local", f"{home}/.cargo"} & set(readable)
        assert victim_posts == []
        assert (records_of(env, attacker) / SESSION_FILE).read_text().strip() == result.thread_id
    else:
        # The control: unconfined, the same script reaches another agent's files and credentials,
        # and, reading the key file (a same-user process can), the other agent's tools.
        reach = ["read_other_workspace", "read_credentials", "write_outside", "env_secret"]
        reach += ["home_credentials", "home_neighbours", "hard_link", "proc_environ"]
        for name in reach:
            assert seen[name].startswith("reached"), (name, seen[name])
        assert (victim / "pwned").exists()
        assert seen["other_agents_tool"].startswith("reached")
        assert victim_posts == [{"text": "posted by the attacker"}]


def toolchain_home(home: Path, secret: str) -> Path:
    """A home as the daemon's toolchains leave it: a pipx-style tool linked from ``~/.local/bin``
    into its venv under ``~/.local/share`` (where another agent's files lie too), rustup's
    ``~/.cargo/bin`` beside ``~/.cargo/credentials.toml``. The folder to put on the PATH."""
    venv = home / ".local" / "share" / "pipx" / "venvs" / "hometool"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "hometool").write_text("#!/bin/sh\necho hometool ok\n")
    (venv / "bin" / "hometool").chmod(0o755)
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "hometool").symlink_to(venv / "bin" / "hometool")
    (home / ".local" / "share" / "other-agent").mkdir()
    (home / ".local" / "share" / "other-agent" / "secret.txt").write_text(secret + "\n")
    (home / ".cargo" / "bin").mkdir(parents=True)
    (home / ".cargo" / "credentials.toml").write_text('[registry]\ntoken = "cio-0000"\n')
    return home / ".local" / "bin"


def output_text(output: Any) -> str:
    if isinstance(output, str):
        return output
    return "\n".join(part.get("text", "") for part in output if isinstance(part, dict))


# Run twice in one turn: "setup" swaps the workspace's specially bound names for links, "probe"
# (the next command, in a sandbox built anew) goes through them.
LINKS = r"""
import json, os, shutil, sys
P = json.loads(sys.argv[2])
def report(name, reached, detail):
    print(name, "reached" if reached else "refused", str(detail).replace("\n", " ")[:120])
def attempt(name, fn):
    try:
        reached, detail = fn()
    except Exception as exc:
        reached, detail = False, f"{type(exc).__name__}: {exc}"
    report(name, reached, detail)
def read(path):
    with open(path) as f:
        return f.read()
def swap(name, target):
    if os.path.lexists(name):
        try:
            os.rename(name, name + "-aside")
        except OSError:
            shutil.rmtree(name)  # its content, at least
    os.symlink(target, name)
    return os.path.islink(name), os.readlink(name)
def write(path):
    with open(path, "w") as f:
        f.write("pwned")
    return True, "written"
print("LINKS-" + sys.argv[1])
if sys.argv[1] == "setup":
    attempt("git_to_root", lambda: swap(".git", "/"))
    attempt("codex_to_victim", lambda: swap(".codex", P["victim"]))
    attempt("agents_to_codex_home", lambda: swap(".agents", P["codex_home"]))
elif sys.argv[1] == "probe":
    attempt("git_to_root", lambda: (P["secret"] in read(".git" + P["victim"] + "/secret.txt"), "read"))
    attempt("git_to_root_write", lambda: write(".git" + P["victim"] + "/pwned-root"))
    attempt("codex_to_victim", lambda: (P["secret"] in read(".codex/secret.txt"), "read"))
    attempt("agents_to_codex_home", lambda: (P["credentials"] in read(".agents/auth.json"), "read"))
else:  # a workspace whose .git is a link to, or a gitdir: file naming, the victim's
    attempt(sys.argv[1], lambda: (P["secret"] in read(P["victim"] + "/secret.txt"), "read"))
    attempt(sys.argv[1] + "_write", lambda: write(P["victim"] + "/pwned-" + sys.argv[1]))
    attempt(sys.argv[1] + "_via_git", lambda: (P["secret"] in read(".git/secret.txt"), "read"))
"""
# What each agent's workspace is before its turn, and the commands of that turn.
LINK_AGENTS = {
    "linker": (None, ["setup", "probe"]),
    "pointed": ("link", ["pointed"]),
    "worktree": ("gitdir", ["worktree"]),
}
LINK_VECTORS = [
    "git_to_root",
    "git_to_root_write",
    "codex_to_victim",
    "agents_to_codex_home",
    "pointed",
    "pointed_write",
    "pointed_via_git",
    "worktree",
    "worktree_write",
]


@pytest.mark.parametrize("sandbox", ["workspace", "none"])
async def test_links_in_a_workspace_widen_nothing(
    codex_env: dict[str, str],
    tmp_path: Path,
    model_server: ScriptedModelServer,
    codex_home: Path,
    sandbox: str,
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "secret.txt").write_text(SECRET + "\n")
    (codex_home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": CREDENTIALS}))
    params = json.dumps(
        {
            "victim": str(victim),
            "codex_home": str(codex_home),
            "secret": SECRET,
            "credentials": CREDENTIALS,
        }
    )
    outputs: dict[str, str] = {}
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config(sandbox=sandbox))
        for agent, (before, phases) in LINK_AGENTS.items():
            workspace = tmp_path / agent
            workspace.mkdir()
            (workspace / "links.py").write_text(textwrap.dedent(LINKS))
            if before == "link":
                (workspace / ".git").symlink_to(victim)
            elif before == "gitdir":
                (workspace / ".git").write_text(f"gitdir: {victim}\n")
            calls = [
                FunctionCall(
                    "exec_command",
                    json.dumps({"cmd": f"python3 links.py {phase} {shlex.quote(params)}"}),
                    call_id=f"{agent}-{phase}",
                )
                for phase in phases
            ]
            model_server.enqueue(*calls, Message("done"))
            turn = plugin.start_turn(f"t-{agent}", AgentContext(agent, workspace), "go")
            assert (await turn.result()).status == "completed"
    for request in model_server.requests:
        for item in request.items_of_type("function_call_output"):
            outputs[item["call_id"]] = output_text(item["output"])
    seen: dict[str, str] = {}
    for call, output in outputs.items():
        for line in output.splitlines():
            name, _, rest = line.partition(" ")
            if name in LINK_VECTORS and (call.endswith("probe") or not call.endswith("setup")):
                seen[name] = rest
    print("\n".join(f"{sandbox}: {call}: {output[-300:]!r}" for call, output in outputs.items()))
    if sandbox == "workspace":
        # Nothing replaced .git, nothing was followed; a link or file already there is not bound.
        assert (tmp_path / "linker" / ".git").is_dir()
        assert not (tmp_path / "linker" / ".git").is_symlink()
        assert "Device or resource busy" in outputs["linker-setup"]
        assert "crosses writable symlink" in outputs["pointed-pointed"]
        for name in LINK_VECTORS:
            assert not seen.get(name, "refused").startswith("reached"), (name, seen[name])
        assert {p.name for p in victim.iterdir()} == {"secret.txt"}
    else:  # the control: unconfined, each link reaches
        for name in LINK_VECTORS:
            assert seen[name].startswith("reached"), (name, seen.get(name), outputs)


@pytest.mark.one_engine
@pytest.mark.parametrize(
    ("config", "field", "why"),
    [
        ({"sandbox_readable": ["{home}/.cargo"]}, "sandbox_readable", "a credential file"),
        ({"sandbox_readable": ["{home}"]}, "sandbox_readable", "a credential file"),
        ({"agent_env": {"pass": ["NOT A NAME"]}}, "agent_env", "is not a variable name"),
    ],
    ids=["cargo", "home", "agent_env"],
)
async def test_initialize_refuses_what_would_expose_a_secret(
    codex_env: dict[str, str], config: dict[str, Any], field: str, why: str
) -> None:
    home = Path(codex_env["HOME"])
    (home / ".cargo").mkdir()
    config = json.loads(json.dumps(config).replace("{home}", str(home)))
    async with await PluginClient.spawn(env=codex_env) as plugin:
        with pytest.raises(JsonRpcError) as refused:
            await plugin.initialize(host_config(**config))
    assert refused.value.code == -32602
    assert refused.value.data == {"field": f"config.{field}"}
    assert why in refused.value.message


async def test_a_thread_started_unconfined_is_confined_on_its_next_turn(
    codex_env: dict[str, str], workspace: Path, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text(SECRET + "\n")
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config(sandbox="none"))
        first = await plugin.start_turn("t-1", AgentContext("cx", workspace), "hi").result()
    command = json.dumps({"cmd": f"cat {outside}"})
    model_server.enqueue(FunctionCall("exec_command", command, call_id="c1"), Message("done"))
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config(sandbox="workspace"))
        second = await plugin.start_turn("t-2", AgentContext("cx", workspace), "cat").result()
    assert second.status == "completed" and second.thread_id == first.thread_id
    [output] = model_server.requests[-1].items_of_type("function_call_output")
    assert SECRET not in output_text(output["output"])
    assert "No such file or directory" in output_text(output["output"])


@pytest.mark.parametrize("features", [{}, {"multi_agent": True}], ids=["default", "turned-on"])
async def test_a_spawn_agent_call_starts_nothing_by_default(
    codex_env: dict[str, str],
    workspace: Path,
    model_server: ScriptedModelServer,
    features: dict[str, bool],
    engine: str,
) -> None:
    spawn = FunctionCall(
        "spawn_agent",
        json.dumps({"message": "SUBAGENT-TASK"}),
        call_id="spawn",
        namespace="multi_agent_v1",
    )
    model_server.enqueue(spawn, Message("done"))
    async with await PluginClient.spawn(env=codex_env) as plugin:
        await plugin.initialize(host_config(codex_features=features))
        result = await plugin.start_turn("t-1", AgentContext("cx", workspace), "go").result()
        assert result.status == "completed"
        offered = model_server.requests[0].tool_names()
        outputs = {
            i["call_id"]: output_text(i["output"])
            for r in model_server.requests
            for i in r.items_of_type("function_call_output")
        }
        if not features:
            assert not any("multi_agent" in name or "spawn" in name for name in offered)
            print(f"spawn_agent, not offered, answered: {outputs['spawn']!r}")
            assert outputs["spawn"].startswith("unsupported call")
            assert len(model_server.requests) == 2  # the turn's own, and no sub-agent's
        else:  # the control: turned on, the same call starts a sub-agent
            print(f"spawn_agent, offered, answered: {outputs['spawn']!r}")
            assert "multi_agent_v1.spawn_agent" in offered
            assert json.loads(outputs["spawn"])["agent_id"]
            if engine == "app-server":  # a `codex exec` may end before its sub-agent asks
                await wait_until(
                    lambda: any(
                        "SUBAGENT-TASK" in t for r in model_server.requests for t in r.user_texts()
                    )
                )


@pytest.mark.one_engine
async def test_where_the_sandbox_cannot_work_agents_run_unconfined_and_everyone_is_told(
    codex_env: dict[str, str], workspace: Path, tmp_path: Path, model_server: ScriptedModelServer
) -> None:
    # A codex whose sandbox fails as bubblewrap does without user namespaces.
    real = host_config().get("binary") or bundled()
    wrapper = tmp_path / "codex"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = sandbox ]; then echo "bwrap: setting up uid map: Permission denied" >&2;'
        " exit 1; fi\n"
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    async with await PluginClient.spawn(env=codex_env) as plugin:
        init = await plugin.initialize(host_config(binary=str(wrapper)))
        assert init["sandbox"]["mode"] == "none"
        assert "uid map: Permission denied" in init["sandbox"]["reason"]
        assert "UNCONFINED" in init["sandbox"]["reason"]
        events = [e async for e in plugin.start_turn("t-1", AgentContext("cx", workspace), "hi")]
        notices = [e for e in events if e.type == "notice" and e.code == "sandbox_unavailable"]
        assert len(notices) == 1 and "Permission denied" in notices[0].message
        second = plugin.start_turn("t-9", AgentContext("cx", workspace), "again")
        assert not [
            e async for e in second if e.type == "notice" and e.code == "sandbox_unavailable"
        ]
    # Asked for explicitly, it fails initialize, naming the key and the reason.
    async with await PluginClient.spawn(env=codex_env) as plugin:
        with pytest.raises(JsonRpcError) as refused:
            await plugin.initialize(host_config(binary=str(wrapper), sandbox="workspace"))
    assert refused.value.code == -32602
    assert refused.value.data == {"field": "config.sandbox"}
    assert "uid map: Permission denied" in refused.value.message


def bundled() -> str:
    from plexum_openai_provider._codex.binary import bundled_codex

    path = bundled_codex()
    assert path is not None
    return path


@pytest.mark.one_engine
async def test_sandbox_network_lets_a_confined_agent_connect(
    codex_env: dict[str, str], workspace: Path, model_server: ScriptedModelServer
) -> None:
    probe = (
        'python3 -c \'import socket; socket.create_connection(("127.0.0.1",'
        f' {model_server.port}), timeout=5).close(); print("CONNECTED")\''
    )
    command = json.dumps({"cmd": probe})
    model_server.enqueue(FunctionCall("exec_command", command, call_id="c1"), Message("done"))
    async with await PluginClient.spawn(env=codex_env) as plugin:
        init = await plugin.initialize(host_config(sandbox_network=True))
        assert init["sandbox"] == {**init["sandbox"], "mode": "workspace", "network": True}
        result = await plugin.start_turn("t-1", AgentContext("cx", workspace), "go").result()
    assert result.status == "completed"
    [output] = model_server.requests[1].items_of_type("function_call_output")
    assert "CONNECTED" in output_text(output["output"])
