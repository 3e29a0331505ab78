"""agent_limits: the config key, the cgroups made for agents (on a cgroup filesystem laid out in a
temporary folder, v1 and v2), and the helper codex runs for each command."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from plexum_openai_provider._codex.cgroups import CpuMemPids, open_cgroups, workspace_key
from plexum_openai_provider._codex.limits import (
    DEFAULT_FILE_SIZE_MB,
    DEFAULT_PROCESSES,
    HELPER_NAME,
    AgentLimits,
    Limiter,
    default_memory_mb,
)
from plexum_openai_provider.config import HostConfig
from plexum_openai_provider.errors import ConfigError

LIMITS = CpuMemPids(processes=100, memory_bytes=300 << 20, cpu_weight=50)


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"processes": 3}, "agent_limits.processes"),
        ({"memory_mb": "512"}, "agent_limits.memory_mb"),
        ({"cpu_weight": 0}, "agent_limits.cpu_weight"),
        ({"file_size_mb": 1.5}, "agent_limits.file_size_mb"),
        ({"tmp_mb": 10}, "agent_limits.tmp_mb"),
        (512, "agent_limits"),
    ],
)
def test_agent_limits_are_validated_naming_the_key(value: object, where: str) -> None:
    with pytest.raises(ConfigError) as refused:
        HostConfig.parse({"agent_limits": value})
    assert refused.value.key == "agent_limits"
    assert f"config key {where!r}" in str(refused.value)


def test_limits_left_out_are_defaults_for_a_dozen_agents() -> None:
    limits = AgentLimits.from_config(HostConfig.parse({"agent_limits": {"processes": 64}}))
    total_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") >> 20
    assert limits == AgentLimits(64, default_memory_mb(), DEFAULT_FILE_SIZE_MB, 100)
    assert default_memory_mb() <= total_mb // 4 + 1  # a share, not all of it
    assert AgentLimits.from_config(HostConfig()).processes == DEFAULT_PROCESSES <= 2048


def _layout(tmp_path: Path, proc: str, mounts: list[str]) -> tuple[str, str]:
    (tmp_path / "proc-cgroup").write_text(proc)
    (tmp_path / "mounts").write_text("".join(f"{m}\n" for m in mounts))
    return str(tmp_path / "proc-cgroup"), str(tmp_path / "mounts")


def test_v1_an_agent_gets_pids_memory_and_cpu_under_the_plugins_own(tmp_path: Path) -> None:
    fs = tmp_path / "cg"
    for name, own in (("pids", ""), ("memory", "/svc/x"), ("cpu", "")):
        (fs / name / own.lstrip("/")).mkdir(parents=True)
    proc, mounts = _layout(
        tmp_path,
        "8:pids:/\n4:memory:/svc/x\n1:cpu:/\n0::/\n",
        [f"cgroup {fs}/{n} cgroup rw,{n} 0 0" for n in ("pids", "memory", "cpu")],
    )
    tree, why = open_cgroups(LIMITS, proc_cgroup=proc, mounts=mounts, pid=4242)
    assert tree is not None and why == ""
    assert tree.mechanism == "cgroup v1 (pids, memory, cpu)"
    tree.join(777, str(tmp_path))
    key = workspace_key(str(tmp_path))
    assert (fs / "pids/plexum-4242" / key / "pids.max").read_text() == "100"
    memory = fs / "memory/svc/x/plexum-4242" / key  # under the plugin's own memory cgroup
    assert (memory / "memory.limit_in_bytes").read_text() == str(300 << 20)
    assert (memory / "memory.memsw.limit_in_bytes").read_text() == str(300 << 20)
    assert (fs / "cpu/plexum-4242" / key / "cpu.shares").read_text() == "512"
    for name in ("pids", "memory/svc/x", "cpu"):
        assert (fs / name / "plexum-4242" / key / "cgroup.procs").read_text() == "777"


def test_v2_delegated_the_plugin_moves_into_a_leaf_and_hands_controllers_down(
    tmp_path: Path,
) -> None:
    own = tmp_path / "cg/system.slice/plexum.service"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    proc, mounts = _layout(
        tmp_path,
        "0::/system.slice/plexum.service\n",
        [f"cgroup2 {tmp_path}/cg cgroup2 rw 0 0"],
    )
    tree, _ = open_cgroups(LIMITS, proc_cgroup=proc, mounts=mounts, pid=4242)
    assert tree is not None and tree.mechanism == "cgroup v2, delegated (pids, memory, cpu)"
    assert (own / "plexum-4242/plugin/cgroup.procs").read_text() == "4242"
    assert (own / "cgroup.subtree_control").read_text() == "+pids +memory +cpu"
    tree.prepare(str(tmp_path))
    agent = own / "plexum-4242" / workspace_key(str(tmp_path))
    assert (agent / "pids.max").read_text() == "100"
    assert (agent / "memory.max").read_text() == str(300 << 20)
    assert (agent / "memory.swap.max").read_text() == "0"
    assert (agent / "cpu.weight").read_text() == "50"


def test_without_a_pids_controller_there_are_no_cgroups_and_it_says_why(tmp_path: Path) -> None:
    own = tmp_path / "cg/user.slice"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("memory\n")
    proc, mounts = _layout(tmp_path, "0::/user.slice\n", [f"cgroup2 {tmp_path}/cg cgroup2 rw 0 0"])
    tree, why = open_cgroups(LIMITS, proc_cgroup=proc, mounts=mounts, pid=1)
    assert tree is None and "no pids controller" in why and "Delegate=yes" in why


def _fake_codex(tmp_path: Path) -> Path:
    codex = tmp_path / "codex"
    # (a script cannot see the argv[0] it was run with; the e2e tests show codex dispatching)
    codex.write_text('#!/bin/sh\necho "args=$*"\necho "fsize=$(ulimit -f)"\n')
    codex.chmod(0o755)
    return codex


@pytest.mark.parametrize("bash", [True, False], ids=["bash", "python"])
def test_the_helper_joins_the_workspaces_cgroup_lowers_rlimits_and_runs_codex(
    tmp_path: Path, bash: bool
) -> None:
    fs = tmp_path / "cg"
    (fs / "pids").mkdir(parents=True)
    proc, mounts = _layout(tmp_path, "8:pids:/\n", [f"cgroup {fs}/pids cgroup rw,pids 0 0"])
    workspace = tmp_path / "ws"
    workspace.mkdir()
    limits = AgentLimits(processes=64, memory_mb=256, file_size_mb=3, cpu_weight=100)
    tree, _ = open_cgroups(CpuMemPids(64, 256 << 20, 100), proc_cgroup=proc, mounts=mounts, pid=99)
    limiter = Limiter(limits, tree, "", str(_fake_codex(tmp_path)), bash=bash)
    try:
        limiter.prepare(str(workspace))
        helper = limiter.helper_dir / HELPER_NAME
        args = ["--sandbox-policy-cwd", str(workspace), "--", "true"]
        done = subprocess.run([helper, *args], capture_output=True, text=True, check=True)
        procs = fs / "pids/plexum-99" / workspace_key(str(workspace)) / "cgroup.procs"
        assert procs.read_text().strip().isdigit()  # the helper's pid, which became codex's
        assert done.stdout.splitlines() == [
            f"args=--sandbox-policy-cwd {workspace} -- true",
            "fsize=6144",  # 3 MB in 512-byte blocks (sh's ulimit -f)
        ]
        # An agent whose cgroup is not there: the command does not run (fail closed).
        other = tmp_path / "other"
        other.mkdir()
        args[1] = str(other)
        refused = subprocess.run([helper, *args], capture_output=True, text=True)
        assert refused.returncode == 126 and refused.stdout == ""
        assert "the agent's limits could not be applied" in refused.stderr
        # The PATH a terminal command's helper is looked up on starts with the plugin's folder.
        assert limiter.env({"PATH": "/usr/bin"})["PATH"] == f"{limiter.helper_dir}:/usr/bin"
    finally:
        limiter.close()
    assert not limiter.helper_dir.exists()


def test_codex_makes_no_helper_folder_for_a_codex_home_in_the_temporary_folder(
    tmp_path: Path,
) -> None:
    limiter = Limiter(AgentLimits(64, 256, 3, 100), None, "no cgroups here", "/bin/true")
    try:
        assert not limiter.expects_folder({"CODEX_HOME": "/tmp/x/codex-home"})
        assert not limiter.expects_folder({"CODEX_HOME": f"{tmp_path}/h", "TMPDIR": str(tmp_path)})
        assert limiter.expects_folder({"CODEX_HOME": "/tmp/x/h", "TMPDIR": "/tmp/x/tmp"})
        assert limiter.expects_folder({"HOME": "/home/agent"})
        described = limiter.describe()
        assert described["mechanism"] == "rlimits only"
        assert described["reason"] == "no cgroups here"
        # Without cgroups the helper bounds processes and memory per process itself.
        assert [name for name, _ in limiter.rlimits()] == [
            "RLIMIT_FSIZE",
            "RLIMIT_NPROC",
            "RLIMIT_DATA",
        ]
    finally:
        limiter.close()
