"""Which sandbox mode agents run under: found out at start-up by running a sandboxed command.

codex's Linux sandbox needs unprivileged user namespaces (bubblewrap). Where they are off
(Ubuntu 24.04's AppArmor default for unconfined programs, ``kernel.unprivileged_userns_clone=0``,
an old kernel, some containers) every confined command would fail. So :func:`choose_policy` runs
``codex sandbox`` with the agents' own profile on a throw-away workspace, with a file beside it
that must stay unseen, and reads what happened:

* ``sandbox: "workspace"`` asked and the probe fails → :class:`ConfigError` with codex's reason;
* ``sandbox`` unset and the probe fails → mode ``none``, loudly: ``initialize`` reports it, each
  agent's first turn gets a ``sandbox_unavailable`` notice, ``doctor`` a ``problem``;
* ``sandbox: "none"`` → no probe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..config import HostConfig
from ..errors import ConfigError
from .agent_env import AgentEnv
from .binary import CodexBinary
from .command import toml_value
from .guard import run_briefly
from .policy import FEATURES_OFF, AgentPolicy, prepare_git_folder
from .readable import credential_paths, exposed, readable_folders

__all__ = ["SANDBOX_FIX", "ProbeResult", "choose_policy", "probe_sandbox"]

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 20.0
SANDBOX_FIX = (
    "codex's sandbox needs unprivileged user namespaces: on Ubuntu 24.04 allow them for codex's"
    " bubblewrap with an AppArmor profile (or `sysctl kernel.apparmor_restrict_unprivileged_userns"
    "=0`); elsewhere `sysctl kernel.unprivileged_userns_clone=1` / `user.max_user_namespaces`;"
    " then restart the plugin (`doctor` shows the probe's outcome)"
)


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str


async def probe_sandbox(
    binary: CodexBinary, policy: AgentPolicy, env: Mapping[str, str]
) -> ProbeResult:
    """Run ``codex sandbox`` with ``policy`` (confined) in a throw-away workspace: it must write
    there and must not see a file next to it. With a CODEX_HOME of its own: what is probed is
    the machine, not the operator's codex state (a CODEX_HOME not made yet fails every turn, and
    says so there)."""
    root = tempfile.mkdtemp(prefix="plexum-sandbox-probe-")
    try:
        workspace = os.path.join(root, "workspace")
        outside = os.path.join(root, "outside")
        os.mkdir(workspace)
        git_folder = prepare_git_folder(workspace)
        os.mkdir(os.path.join(root, "codex-home"))
        with open(outside, "w") as f:
            f.write("must not be seen\n")
        script = f"test ! -e '{outside}' && echo confined > probe"
        argv = [binary.path, "sandbox"]  # in the workspace: its cwd
        for key, value in policy.config(git_folder=git_folder).items():
            argv += ["-c", f"{key}={toml_value(value)}"]
        argv += ["--", "/bin/sh", "-c", script]
        try:
            done = await run_briefly(
                argv,
                timeout=PROBE_TIMEOUT_S,
                env={**env, "CODEX_HOME": os.path.join(root, "codex-home")},
                cwd=workspace,
            )
        except OSError as exc:
            return ProbeResult(False, f"`codex sandbox` could not be started: {exc}")
        if done.returncode is None:
            return ProbeResult(False, f"`codex sandbox` did not finish in {PROBE_TIMEOUT_S:g} s")
        marker = os.path.join(workspace, "probe")
        if done.returncode == 0 and os.path.exists(marker):
            return ProbeResult(True, "a sandboxed command wrote its workspace and saw nothing else")
        if done.returncode == 1 and not done.stderr.strip():
            return ProbeResult(False, "the sandbox let a command see a file outside its workspace")
        reason = _last_error(done.stderr.decode("utf-8", "replace")) or f"exit {done.returncode}"
        return ProbeResult(False, f"`codex sandbox` failed: {reason}")
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(root)


def _last_error(stderr: str) -> str:
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and not line.startswith("WARNING: proceeding")
    ]
    for line in reversed(lines):
        if "bwrap" in line or "error" in line.lower() or "denied" in line.lower():
            return line[:500]
    return lines[-1][:500] if lines else ""


async def choose_policy(
    config: HostConfig,
    binary: CodexBinary,
    env: Mapping[str, str],
    *,
    never: Iterable[str],
    protected: tuple[str, ...],
) -> AgentPolicy:
    """The policy agents run under (see the module docstring). ``never``: folders no agent may
    see (CODEX_HOME, the plugin's socket and lock folders); ``protected``: workspace files an
    agent may read but not write. ConfigError if a ``sandbox_readable`` entry would expose one
    of ``never`` or a known credential file (:data:`~.readable.CREDENTIALS`), or ``sandbox:
    "workspace"`` cannot work here."""
    never = [os.path.realpath(p) for p in never]
    credentials = credential_paths(env.get("HOME"))
    for path in config.sandbox_readable:
        real = os.path.realpath(path)
        guarded = exposed(real, never)
        what = (
            "CODEX_HOME holds codex's credentials and every agent's sessions; the plugin's"
            " folders hold its sockets and locks"
        )
        if guarded is None:
            guarded = exposed(real, credentials)
            what = "a credential file"
        if guarded is not None:
            raise ConfigError(
                f"config key 'sandbox_readable' has an invalid value {path!r}: it would let"
                f" agents see {guarded} ({what})",
                key="sandbox_readable",
                value=list(config.sandbox_readable),
            )
    features = {**FEATURES_OFF, **config.codex_features}
    if config.sandbox == "none":
        return AgentPolicy("none", 'sandbox is "none" in the config', features=features)
    readable, left_out = readable_folders(
        codex_package=binary.package,
        path_env=env.get("PATH", os.defpath),
        operator=config.sandbox_readable,
        never=never,
        home=env.get("HOME"),
        rustup_home=env.get("RUSTUP_HOME"),
    )
    for what in left_out:
        log.info("sandbox: not readable by agents: %s", what)
    policy = AgentPolicy(
        "workspace",
        "codex's sandbox works on this machine (probed at start-up)",
        tuple(readable),
        config.sandbox_network,
        protected,
        features,
        env=AgentEnv.from_config(config.agent_env),
    )
    result = await probe_sandbox(binary, policy, env)
    if result.ok:
        log.info("sandbox: agents are confined to their workspaces (%s)", result.detail)
        return policy
    if config.sandbox == "workspace":
        raise ConfigError(
            f"config key 'sandbox' has an invalid value \"workspace\": codex's sandbox does not"
            f" work on this machine ({result.detail}). {SANDBOX_FIX}",
            key="sandbox",
            value="workspace",
        )
    reason = (
        f"codex's sandbox does not work on this machine ({result.detail}): agents run"
        f" UNCONFINED, with every right of the plugin's user. {SANDBOX_FIX}"
    )
    log.warning("sandbox: %s", reason)
    return AgentPolicy("none", reason, features=features, unavailable=True)
