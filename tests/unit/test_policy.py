"""The agents' policy: the permission profile codex is given, the folders it lets an agent read,
and the start-up probe's outcomes (a real ``codex sandbox`` run, and fakes that fail as a machine
without user namespaces does or that do not confine)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from plexum_openai_provider._codex.binary import CodexBinary, bundled_codex
from plexum_openai_provider._codex.command import config_overrides, exec_argv
from plexum_openai_provider._codex.policy import (
    FEATURES_OFF,
    PROFILE,
    AgentPolicy,
    readable_folders,
    toolchain_folders,
)
from plexum_openai_provider._codex.sandbox_probe import choose_policy
from plexum_openai_provider.config import HostConfig
from plexum_openai_provider.errors import ConfigError


def test_the_profile_of_a_confined_agent() -> None:
    policy = AgentPolicy(
        "workspace", "probed", ("/opt/tools",), False, (".plexum-codex-session",), {}
    )
    assert policy.config() == {
        "default_permissions": PROFILE,
        f"permissions.{PROFILE}.filesystem": {
            ":minimal": "read",
            "/opt/tools": "read",
            ":workspace_roots": {".": "write", ".git": "write", ".plexum-codex-session": "read"},
        },
        f"permissions.{PROFILE}.network.enabled": False,
    }
    argv = exec_argv("codex", policy=policy)
    assert "--dangerously-bypass-approvals-and-sandbox" not in argv
    assert argv[4:6] == ["-c", 'approval_policy="never"']
    # Every -c value is TOML codex reads back as the same value.
    pairs = config_overrides(policy.config())
    for override in pairs[1::2]:
        key, value = override.split("=", 1)
        assert tomllib.loads(f"x = {value}")["x"] == policy.config()[key]


def test_unconfined_is_the_seeds_full_access_with_the_features_off() -> None:
    policy = AgentPolicy("none", "configured")
    assert policy.config() == {f"features.{name}": False for name in FEATURES_OFF}
    assert {"multi_agent", "apps", "browser_use", "computer_use", "goals"} <= set(FEATURES_OFF)
    assert "--dangerously-bypass-approvals-and-sandbox" in exec_argv("codex", policy=policy)
    assert policy.describe()["network"] is True


def test_the_toolchains_of_the_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folders = {
        "pyenv": home / ".pyenv" / "shims",
        "nvm": home / ".nvm" / "versions" / "node" / "v22" / "bin",
        "local": home / ".local" / "bin",
        "opt": tmp_path / "opt" / "tool" / "bin",
        "plain": tmp_path / "scripts",
    }
    for folder in folders.values():
        folder.mkdir(parents=True)
    path = ":".join([*(str(f) for f in folders.values()), str(tmp_path / "missing"), "relative"])
    assert toolchain_folders(path) == [
        str(home / ".pyenv"),
        str(home / ".nvm"),
        str(home / ".local"),
        str(tmp_path / "opt" / "tool"),
        str(tmp_path / "scripts"),
    ]


def test_readable_folders_never_expose_codex_home_or_the_whole_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    codex_home = home / ".local" / "codex"  # inside a toolchain folder
    for folder in (home / ".local" / "bin", codex_home, home / "bin", home / ".cargo" / "bin"):
        folder.mkdir(parents=True)
    package = tmp_path / "pkg"
    (package / "bin").mkdir(parents=True)
    readable, left_out = readable_folders(
        codex_package=str(package),
        path_env=f"{home}/.local/bin:{home}/bin:{home}/.cargo/bin:/usr/bin:/bin",
        operator=["/srv/extra"],
        never=[str(codex_home)],
        home=str(home),
    )
    assert readable == [str(package), str(home / ".cargo"), "/srv/extra"]
    assert any("holds" in why and str(codex_home) in why for why in left_out)
    assert any("whole home" in why for why in left_out)


async def test_sandbox_readable_that_would_expose_codex_home_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    home.mkdir()
    config = HostConfig.parse({"sandbox_readable": [str(tmp_path)]})
    with pytest.raises(ConfigError) as err:
        await choose_policy(config, _fake(tmp_path, "exit 0"), {}, never=[str(home)], protected=())
    assert err.value.key == "sandbox_readable" and str(home) in err.value.message


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
