"""The agents' policy: the permission profile codex is given, the folders it lets an agent read,
and the start-up probe's outcomes (a real ``codex sandbox`` run, and fakes that fail as a machine
without user namespaces does or that do not confine)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from plexum_openai_provider._codex.agent_env import PROGRAMS_NEED, AgentEnv
from plexum_openai_provider._codex.binary import CodexBinary, bundled_codex
from plexum_openai_provider._codex.command import config_overrides, exec_argv
from plexum_openai_provider._codex.policy import (
    FEATURES_OFF,
    GIT_GUARD,
    PROFILE,
    AgentPolicy,
    prepare_git_folder,
)
from plexum_openai_provider._codex.readable import readable_folders, toolchain_folders
from plexum_openai_provider._codex.sandbox_probe import choose_policy
from plexum_openai_provider.config import HostConfig
from plexum_openai_provider.errors import ConfigError

ENV = "shell_environment_policy"


def test_the_profile_of_a_confined_agent() -> None:
    policy = AgentPolicy(
        "workspace",
        "probed",
        ("/opt/tools",),
        False,
        (".plexum-codex-session",),
        {},
        env=AgentEnv(("GITHUB_TOKEN",), {"FOO": "bar"}),
    )
    roots = {".": "write", ".git": "write", GIT_GUARD: "read", ".plexum-codex-session": "read"}
    assert policy.config() == {
        "agents.enabled": False,
        "default_permissions": PROFILE,
        f"permissions.{PROFILE}.filesystem": {
            ":minimal": "read",
            "/opt/tools": "read",
            ":workspace_roots": roots,
        },
        f"permissions.{PROFILE}.network.enabled": False,
        "allow_login_shell": False,
        f"{ENV}.inherit": "all",
        f"{ENV}.ignore_default_excludes": True,
        f"{ENV}.include_only": [*PROGRAMS_NEED, "PLEXUM_CODEX_OWNER", "GITHUB_TOKEN", "FOO"],
        f"{ENV}.set": {"FOO": "bar"},
        "tools.update_plan.enabled": True,
    }
    # A .git that is not a real folder is not named: codex's own protection applies.
    unnamed = policy.config(git_folder=False)[f"permissions.{PROFILE}.filesystem"]
    assert unnamed[":workspace_roots"] == {".": "write", ".plexum-codex-session": "read"}
    argv = exec_argv("codex", policy=policy)
    assert "--dangerously-bypass-approvals-and-sandbox" not in argv
    assert argv[4:6] == ["-c", 'approval_policy="never"']
    # Every -c value is TOML codex reads back as the same value.
    pairs = config_overrides(policy.config())
    for override in pairs[1::2]:
        key, value = override.split("=", 1)
        assert tomllib.loads(f"x = {value}")["x"] == policy.config()[key]


def test_unconfined_is_the_seeds_full_access_with_the_features_off() -> None:
    policy = AgentPolicy("none", "configured", env=AgentEnv(("X",)))
    # Every variable reaches the agent, as it always did: no shell_environment_policy.
    assert policy.config() == {
        **{f"features.{name}": False for name in FEATURES_OFF},
        "tools.update_plan.enabled": True,  # the plan reaches the host
        "agents.enabled": False,
    }
    assert {"multi_agent", "apps", "browser_use", "computer_use", "goals"} <= set(FEATURES_OFF)
    assert "--dangerously-bypass-approvals-and-sandbox" in exec_argv("codex", policy=policy)
    assert policy.describe()["network"] is True


def test_sub_agents_are_off_unless_a_sub_agent_feature_is_turned_on() -> None:
    """A catalog model offers codex's sub-agents with both features off; agents.enabled is what
    removes them, and it follows the operator's codex_features."""
    assert AgentPolicy("none", "x").config()["agents.enabled"] is False
    for feature in ("multi_agent", "multi_agent_v2"):
        on = AgentPolicy("none", "x", features={**FEATURES_OFF, feature: True})
        assert on.config()["agents.enabled"] is True
        assert on.config()[f"features.{feature}"] is True
    other = AgentPolicy("none", "x", features={**FEATURES_OFF, "apps": True})
    assert other.config()["agents.enabled"] is False


def test_a_missing_git_folder_is_made_and_a_link_or_file_is_left_alone(tmp_path: Path) -> None:
    fresh, linked, worktree = (tmp_path / n for n in ("fresh", "linked", "worktree"))
    for folder in (fresh, linked, worktree):
        folder.mkdir()
    assert prepare_git_folder(fresh) is True
    guard = fresh / GIT_GUARD
    assert [p.name for p in (fresh / ".git").iterdir()] == [guard.name]
    assert guard.is_file() and not guard.is_symlink() and guard.read_bytes() == b""
    target = tmp_path / "target"
    target.mkdir()
    (target / "kept").write_text("x")
    for planted in ("link", "folder"):  # what a command could leave there: made again
        guard.unlink()  # the file prepare_git_folder made
        if planted == "link":
            guard.symlink_to(target)
        else:
            (guard / "sub").mkdir(parents=True)
            (guard / "sub" / "escape").symlink_to(target)
        assert prepare_git_folder(fresh) is True
        assert guard.is_file() and not guard.is_symlink() and guard.read_bytes() == b""
    assert (target / "kept").read_text() == "x"  # links not followed
    (linked / ".git").symlink_to("/")
    assert prepare_git_folder(linked) is False
    assert (linked / ".git").readlink() == Path("/")
    (worktree / ".git").write_text("gitdir: /elsewhere\n")
    assert prepare_git_folder(worktree) is False
    assert (worktree / ".git").read_text() == "gitdir: /elsewhere\n"


def _exe(path: Path, text: str = "#!/bin/sh\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def _link(path: Path, target: Path | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def _toolchains(tmp_path: Path) -> tuple[Path, str]:
    """A home with pyenv, pipx, nvm, rustup's cargo and credentials; the PATH that uses them."""
    home = tmp_path / "home"
    pyenv = home / ".pyenv"
    _exe(pyenv / "libexec" / "pyenv")
    _link(pyenv / "bin" / "pyenv", "../libexec/pyenv")
    _exe(pyenv / "shims" / "python3", '#!/usr/bin/env bash\nexec pyenv exec "$@"\n')
    python = _exe(pyenv / "versions" / "3.11.7" / "bin" / "python3.11", "ELF")
    (pyenv / "version").write_text("3.11.7\n")
    venv = home / ".local" / "share" / "pipx" / "venvs" / "black"
    _link(venv / "bin" / "python", python)
    _exe(venv / "bin" / "black", f"#!{venv}/bin/python\nimport black\n")
    _link(home / ".local" / "bin" / "black", venv / "bin" / "black")
    (home / ".local" / "share" / "other-agent").mkdir(parents=True)  # beside pipx's venvs
    node = home / ".nvm" / "versions" / "node" / "v22"
    _exe(node / "bin" / "node", "ELF")
    _exe(node / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js", "#!/usr/bin/env node\n")
    _link(node / "bin" / "npm", "../lib/node_modules/npm/bin/npm-cli.js")
    _exe(home / ".cargo" / "bin" / "rustup", "ELF")
    _link(home / ".cargo" / "bin" / "cargo", "rustup")
    (home / ".cargo" / "credentials.toml").write_text("token = 'x'\n")
    (home / ".rustup" / "toolchains").mkdir(parents=True)
    _exe(tmp_path / "opt" / "tool" / "bin" / "tool", "ELF")
    (home / "notes").mkdir()
    entries = [
        pyenv / "shims",
        pyenv / "bin",
        home / ".local" / "bin",
        node / "bin",
        home / ".cargo" / "bin",
        tmp_path / "opt" / "tool" / "bin",
        tmp_path / "missing",
    ]
    return home, ":".join([*(str(e) for e in entries), "relative", "/usr/bin"])


def test_the_toolchains_of_the_path_are_what_their_programs_resolve_into(tmp_path: Path) -> None:
    home, path = _toolchains(tmp_path)
    pyenv, node = home / ".pyenv", home / ".nvm" / "versions" / "node" / "v22"
    venv = home / ".local" / "share" / "pipx" / "venvs" / "black"
    folders = toolchain_folders(path)
    assert folders == [
        str(pyenv / "shims"),
        str(pyenv / "libexec"),
        str(pyenv / "versions"),
        str(pyenv / "version"),
        str(pyenv / "bin"),
        str(home / ".local" / "bin"),
        str(venv),  # the link's target's installation
        str(pyenv / "versions" / "3.11.7"),  # its script's interpreter's
        str(node / "bin"),
        str(node / "lib" / "node_modules" / "npm"),
        str(home / ".cargo" / "bin"),
        str(home / ".rustup"),
        str(tmp_path / "opt" / "tool" / "bin"),
        "/usr/bin",
    ]
    # Never a PATH folder's parent: not ~/.local (another agent's files), not ~/.cargo (its
    # credentials), not ~/.pyenv whole.
    for parent in (home / ".local", home / ".cargo", pyenv, home / ".nvm", home):
        assert str(parent) not in folders


def test_readable_folders_never_expose_what_no_agent_may_see(tmp_path: Path) -> None:
    home, path = _toolchains(tmp_path)
    codex_home = home / ".pyenv" / "versions" / "codex-home"  # inside a toolchain folder
    codex_home.mkdir()
    _link(tmp_path / "bin" / "x", home / "x")  # resolves into the home itself
    _exe(home / "x")
    (home / ".aws" / "bin").mkdir(parents=True)  # a PATH folder inside a credential folder
    _exe(home / ".aws" / "bin" / "aws")
    package = tmp_path / "pkg"
    (package / "bin").mkdir(parents=True)
    readable, left_out = readable_folders(
        codex_package=str(package),
        path_env=f"{path}:{tmp_path / 'bin'}:{home / '.aws' / 'bin'}",
        operator=["/srv/extra"],
        never=[str(codex_home)],
        home=str(home),
    )
    pyenv = home / ".pyenv"
    assert readable == [
        str(package),
        str(pyenv / "shims"),
        str(pyenv / "libexec"),
        str(pyenv / "version"),
        str(pyenv / "bin"),
        str(home / ".local" / "bin"),
        str(home / ".local" / "share" / "pipx" / "venvs" / "black"),
        str(pyenv / "versions" / "3.11.7"),
        str(home / ".nvm" / "versions" / "node" / "v22" / "bin"),
        str(home / ".nvm" / "versions" / "node" / "v22" / "lib" / "node_modules" / "npm"),
        str(home / ".cargo" / "bin"),
        str(home / ".rustup"),
        str(tmp_path / "opt" / "tool" / "bin"),
        str(tmp_path / "bin"),
        "/srv/extra",
    ]
    assert left_out == [
        f"{pyenv / 'versions'} (it holds {codex_home})",
        f"{home} (the whole home or root)",
        f"{home / '.aws' / 'bin'} (it holds {home / '.aws'})",
    ]


def test_a_turn_does_not_read_a_folder_that_holds_a_workspace(tmp_path: Path) -> None:
    shared, tools = tmp_path / "shared", tmp_path / "tools"
    policy = AgentPolicy("workspace", "probed", (str(shared), str(tools)))
    assert policy.for_workspace(str(tmp_path / "ws")) is policy
    assert policy.for_workspace(str(shared / "cx")).readable == (str(tools),)
    assert policy.for_workspace(str(tmp_path / "ws"), [str(shared / "b")]).readable == (str(tools),)
    unconfined = AgentPolicy("none", "configured", (str(shared),))
    assert unconfined.for_workspace(str(shared / "cx")) is unconfined


@pytest.mark.parametrize(
    ("agent_env", "why"),
    [
        ({"pass": ["1X"]}, "'pass' entry '1X' is not a variable name"),
        ({"pass": ["A-B"]}, "'pass' entry 'A-B' is not a variable name"),
        ({"pass": ["*"]}, "'pass' entry '*' is not a variable name"),
        ({"pass": "X"}, "agent_env.pass"),
        ({"set": {"A B": "x"}}, "'set' name 'A B' is not a variable name"),
        ({"set": {"X": 1}}, "agent_env.set.X"),
        ({"set": {"X": "a\0b"}}, "'set' value of 'X' holds a NUL byte"),
        ({"pass": ["X"], "set": {"X": "1"}}, "'X' is both passed and set"),
        ({"pass": ["PLEXUM_CODEX_OWNER"]}, "the plugin's or codex's own"),
        ({"set": {"CODEX_THREAD_ID": "t"}}, "the plugin's or codex's own"),
        ({"other": []}, "'agent_env.other' is not known"),
        (["X"], "agent_env"),
    ],
)
def test_agent_env_is_checked(agent_env: object, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        HostConfig.parse({"agent_env": agent_env})
    assert err.value.key == "agent_env" and why in err.value.message


def test_agent_env_names_and_values() -> None:
    config = HostConfig.parse(
        {"agent_env": {"pass": ["GITHUB_TOKEN", "MYAPP_*"], "set": {"A": "1"}}}
    )
    env = AgentEnv.from_config(config.agent_env)
    assert env.names()[-3:] == ["GITHUB_TOKEN", "MYAPP_*", "A"]
    assert env.config()[f"{ENV}.set"] == {"A": "1"}
    assert env.config()["allow_login_shell"] is False  # a login profile would reset PATH
    assert HostConfig().agent_env.pass_ == () and HostConfig().agent_env.set == {}


async def test_sandbox_readable_that_would_expose_codex_home_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    home.mkdir()
    config = HostConfig.parse({"sandbox_readable": [str(tmp_path)]})
    with pytest.raises(ConfigError) as err:
        await choose_policy(config, _fake(tmp_path, "exit 0"), {}, never=[str(home)], protected=())
    assert err.value.key == "sandbox_readable" and str(home) in err.value.message


@pytest.mark.parametrize("entry", [".config", ".cargo", "", ".ssh/keys"])
async def test_sandbox_readable_that_would_expose_a_credential_file_is_refused(
    tmp_path: Path, entry: str
) -> None:
    home = tmp_path / "home"
    folder = home / entry
    folder.mkdir(parents=True)
    (tmp_path / "ok").mkdir()
    config = HostConfig.parse({"sandbox_readable": [str(tmp_path / "ok"), str(folder)]})
    with pytest.raises(ConfigError) as err:
        await choose_policy(
            config, _fake(tmp_path, "exit 0"), {"HOME": str(home)}, never=[], protected=()
        )
    assert err.value.key == "sandbox_readable"
    assert f"invalid value {str(folder)!r}" in err.value.message
    assert "a credential file" in err.value.message


def _fake(tmp_path: Path, sandbox: str) -> CodexBinary:
    """A codex whose ``sandbox`` subcommand runs ``sandbox`` (a shell fragment)."""
    script = tmp_path / "fake-codex"
    script.write_text(f'#!/bin/sh\nif [ "$1" = sandbox ]; then {sandbox}; fi\nexit 2\n')
    script.chmod(0o755)
    return CodexBinary(str(script), "0.163.0")


NO_USERNS = 'echo "bwrap: No permissions to create new namespace" >&2; exit 1'
# Runs the command, but unconfined: it sees the file beside the workspace.
UNCONFINED = 'while [ "$1" != -- ]; do shift; done; shift; exec "$@"'


@pytest.mark.parametrize(
    ("sandbox", "why"),
    [(NO_USERNS, "No permissions to create new namespace"), (UNCONFINED, "outside its workspace")],
    ids=["no user namespaces", "does not confine"],
)
async def test_a_probe_that_fails_means_unconfined_or_an_error_if_asked(
    tmp_path: Path, sandbox: str, why: str
) -> None:
    binary = _fake(tmp_path, sandbox)
    policy = await choose_policy(
        HostConfig(), binary, {"PATH": "/usr/bin:/bin"}, never=[], protected=()
    )
    assert (policy.mode, policy.unavailable) == ("none", True)
    assert why in policy.reason and "UNCONFINED" in policy.reason
    with pytest.raises(ConfigError) as err:
        await choose_policy(
            HostConfig.parse({"sandbox": "workspace"}), binary, {}, never=[], protected=()
        )
    assert err.value.key == "sandbox" and why in err.value.message
    none = await choose_policy(
        HostConfig.parse({"sandbox": "none"}), binary, {}, never=[], protected=()
    )
    assert (none.mode, none.unavailable) == ("none", False)  # asked for: no probe, no notice


async def test_the_real_probe_passes_here(tmp_path: Path) -> None:
    path = bundled_codex()
    assert path is not None
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "CODEX_HOME": str(codex_home), "HOME": str(tmp_path)}
    policy = await choose_policy(
        HostConfig.parse({"sandbox_network": True}),
        CodexBinary(path, "0.163.0"),
        env,
        never=[str(codex_home)],
        protected=(".plexum-codex-session",),
    )
    assert policy.mode == "workspace" and policy.network is True
    assert policy.readable[0] == str(Path(path).resolve().parent.parent)  # codex's package
