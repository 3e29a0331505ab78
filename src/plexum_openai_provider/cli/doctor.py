"""``plexum-openai-provider-plugin doctor``: what is wrong with this install, and how to fix it.

Each line is ``ok`` or ``problem`` with its fix; the exit code is 1 when anything is wrong. It never
prints a secret: the login is reported by its kind only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pwd
import stat
import sys
import time
import tomllib
from pathlib import Path

from .._bridge.names import SERVER_PREFIX, default_socket_dir
from .._codex.binary import CodexBinary, resolve_codex
from .._codex.guard import run_briefly
from .._codex.home import codex_home
from .._codex.limits import AgentLimits, Limiter
from .._codex.login import login_state
from .._codex.sandbox_probe import SANDBOX_FIX
from .._engine.app_server_probe import VERIFIED_VERSIONS
from .._engine.select import choose_engine
from ..config import HostConfig, load_config_file
from ..errors import ProviderError
from ..provider import choose_agent_policy

__all__ = ["doctor_command"]


class Report:
    def __init__(self) -> None:
        self.problems = 0

    def ok(self, what: str) -> None:
        print(f"ok       {what}")

    def problem(self, what: str, fix: str) -> None:
        self.problems += 1
        print(f"problem  {what}\n         fix: {fix}")

    def info(self, what: str) -> None:
        print(f"info     {what}")


async def _login(binary: CodexBinary, report: Report) -> None:
    state = await login_state(binary.path, os.environ)
    kinds = {"chatgpt": "ChatGPT", "api_key": "an API key", "other": "a login"}
    if state.logged_in:
        report.ok(f"codex is logged in (using {kinds[state.method or 'other']})")
    elif state.logged_in is None:
        report.problem(
            "`codex login status` did not say whether codex is logged in",
            f"run `{binary.path} login status` by hand to see why",
        )
    else:
        report.problem(
            "codex is not logged in",
            "run `plexum-openai-provider-plugin login` as the user the daemon runs as, with its"
            " CODEX_HOME (`--device-auth` on a machine with no browser, `--with-api-key` with"
            " the key on stdin)",
        )


def _config_toml(home: Path, report: Report) -> None:
    config_path = home / "config.toml"
    try:
        config = tomllib.loads(config_path.read_text())
    except FileNotFoundError:
        report.info(f"{config_path} does not exist yet (codex writes it on first use)")
        return
    except tomllib.TOMLDecodeError as exc:
        report.problem(f"{config_path} is not valid TOML: {exc}", "repair or remove the file")
        return
    report.ok(f"{config_path} is valid TOML")
    # Earlier versions registered each agent's bridge there; now it is given to codex per run.
    legacy = sorted(
        name for name in (config.get("mcp_servers") or {}) if name.startswith(SERVER_PREFIX)
    )
    for name in legacy:
        report.info(
            f"{name} in {config_path} is left from an earlier version of this plugin and is no"
            f" longer used; `codex mcp remove {name}` removes it"
        )


# A login shell slower than this delays every new codex thread's first shell command (codex
# snapshots the user's login shell environment when a thread starts) and each command it runs.
SLOW_LOGIN_SHELL_S = 1.0
# pyenv-rehash's lock: a rehash holds it for well under a second; older, its holder was killed.
STALE_LOCK_S = 60.0


def _pyenv_lock(report: Report) -> bool:
    """A stale pyenv rehash lock (True if there is one: a login shell would then wait 60 s)."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    lock = root / "shims" / ".pyenv-shim"
    try:
        age = time.time() - lock.stat().st_mtime
    except OSError:
        return False
    if age < STALE_LOCK_S:
        report.info(f"pyenv is rehashing now ({lock} is {age:.0f} s old)")
        return False
    report.problem(
        f"a stale pyenv lock {lock} ({age / 60:.0f} min old; left by a shell that was killed"
        " mid-rehash): every login shell of this user waits 60 s for it, codex's shell snapshots"
        " and the agents' shell commands included",
        f"rm {lock}",
    )
    return True


async def _login_shell(report: Report) -> None:
    shell = os.environ.get("SHELL") or pwd.getpwuid(os.getuid()).pw_shell or "/bin/sh"
    if _pyenv_lock(report):
        report.info(f"login shell {shell}: not timed (the stale lock above would hold it 60 s)")
        return
    started = time.monotonic()
    # Ended gently if it hangs: a login shell's traps (pyenv's lock) must run.
    await run_briefly([shell, "-lc", "true"], timeout=10 * SLOW_LOGIN_SHELL_S)
    took = time.monotonic() - started
    what = f"login shell `{shell} -lc true` took {took:.2f} s"
    if took > SLOW_LOGIN_SHELL_S:
        report.problem(
            f"{what}: every new codex thread's first shell command waits for it, and each"
            " command an agent runs starts one",
            f"find what is slow with `{shell} -lxc true` (pyenv, conda and nvm set-ups often are);"
            " keep ~/.profile and ~/.bashrc light for the daemon's user",
        )
    else:
        report.ok(what)


def _socket_dir(report: Report) -> None:
    folder = default_socket_dir()
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        report.info(f"socket folder {folder} does not exist yet (made 0700 on the first tool turn)")
        return
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        report.problem(f"socket folder {folder} is not a folder", f"remove {folder}")
    elif info.st_uid != os.getuid():
        report.problem(f"socket folder {folder} belongs to uid {info.st_uid}", f"remove {folder}")
    elif mode != 0o700:
        report.problem(f"socket folder {folder} has mode {mode:o}", f"chmod 700 {folder}")
    else:
        report.ok(f"socket folder {folder} is 0700 and ours")


async def _engine(config: HostConfig, binary: CodexBinary, report: Report) -> None:
    verified = ", ".join(sorted(VERIFIED_VERSIONS))
    try:
        engine, info = await choose_engine(config, binary, os.environ)
    except ProviderError as exc:
        report.problem(f"engine: {exc.message}", "fix the config key it names")
        return
    try:
        if info.name == "app-server":
            report.ok(
                f"engine app-server: its probe and handshake passed on codex {binary.version}"
            )
        elif info.fallback_reason is None:
            report.ok("engine exec (as configured)")
        elif info.requested == "app-server" and config.engine == "app-server":
            report.problem(
                f"engine exec instead of app-server: {info.fallback_reason}",
                "see the reason; turns run on the exec engine meanwhile",
            )
        else:
            report.info(f"engine exec: {info.fallback_reason}")
        if info.newer_than_verified:
            report.info(
                f"codex {binary.version} is newer than the versions the whole suite passed on"
                f" ({verified}); `tools/check-codex {binary.version}` runs it on this version"
            )
        elif not info.codex_verified:
            report.info(f"codex {binary.version} is not a version the suite ran on ({verified})")
    finally:
        await engine.close()


async def _sandbox(config: HostConfig, binary: CodexBinary, report: Report) -> bool:
    """Are agents confined?"""
    try:
        policy = await choose_agent_policy(config, binary, os.environ)
    except ProviderError as exc:
        report.problem(f"sandbox: {exc.message}", "fix the config key it names")
        return False
    if policy.confined:
        network = "with network" if policy.network else "no network"
        readable = ", ".join(policy.readable) or "nothing else"
        report.ok(
            f"sandbox: agents are confined to their workspaces ({network}; they may also read"
            f" {readable}; their commands get only these variables of the environment:"
            f" {', '.join(policy.env.names())})"
        )
    elif policy.unavailable:
        report.problem(f"sandbox: {policy.reason.split(' ' + SANDBOX_FIX)[0]}", SANDBOX_FIX)
    else:
        report.info(
            'sandbox: "none" in the config: agents run with every right of this user (any'
            " person who can talk to one can make it read and write what this user can)"
        )
    return policy.confined


def _limits(config: HostConfig, binary: CodexBinary, report: Report) -> None:
    """What bounds each confined agent's commands here (see _codex/limits.py)."""
    limiter = Limiter.open(AgentLimits.from_config(config), binary.native)
    try:
        limits = limiter.limits
        what = (
            f"limits: each agent's commands: {limits.processes} processes, {limits.memory_mb} MB"
            f" of memory (its /tmp included), {limits.file_size_mb} MB a file, CPU weight"
            f" {limits.cpu_weight}; by {limiter.mechanism}"
        )
        if limiter.tree is None:
            report.problem(
                f"{what}: {limiter.why}. Without a pids cgroup one agent's fork bomb can take"
                " the machine (RLIMIT_NPROC counts every process of the user, and none of root)",
                "run the plugin under systemd with Delegate=yes (examples/plexum.service), or"
                " where the cgroup v1 pids hierarchy is writable",
            )
        elif not limiter.expects_folder(dict(os.environ)):
            report.problem(
                f"{what}; but CODEX_HOME is under the temporary folder, where codex makes no"
                " helper folder: the app-server's commands without a terminal run unbounded",
                "set CODEX_HOME to a folder outside $TMPDIR (or /tmp), e.g. ~/.codex",
            )
        else:
            report.ok(what)
    finally:
        limiter.close()


async def _doctor(config: HostConfig) -> int:
    report = Report()
    try:
        binary = await resolve_codex(config.binary)
    except ProviderError as exc:
        report.problem(exc.message, "see above")
        return 1
    report.ok(f"codex {binary.version} runs: {binary.path}")
    home = codex_home()
    # Which one was checked matters: `sudo -u` drops CODEX_HOME, and codex then uses ~/.codex.
    source = "from $CODEX_HOME" if os.environ.get("CODEX_HOME") else "$CODEX_HOME is not set"
    if home.is_dir():
        report.ok(f"CODEX_HOME {home} ({source})")
    else:
        report.problem(
            f"CODEX_HOME {home} ({source}) does not exist",
            "run `plexum-openai-provider-plugin login` as this user, with this CODEX_HOME (it"
            " creates it), or set CODEX_HOME to the one the daemon uses",
        )
    await _engine(config, binary, report)
    if await _sandbox(config, binary, report):
        _limits(config, binary, report)
    await _login(binary, report)
    _config_toml(home, report)
    _socket_dir(report)
    await _login_shell(report)
    print("all good" if not report.problems else f"{report.problems} problem(s)")
    return 1 if report.problems else 0


def doctor_command(ns: argparse.Namespace) -> int:
    if not ns.verbose and "PLEXUM_LOG_LEVEL" not in os.environ:
        # Every finding is a line of the report: the same in the log would say it twice.
        logging.getLogger("plexum_openai_provider").setLevel(logging.ERROR)
    try:
        config = load_config_file(ns.config) if ns.config else HostConfig()
        home = config.account_home(ns.account)
    except ProviderError as exc:
        print(f"problem  {exc}", file=sys.stdout)
        return 1
    if home is not None:  # the account's CODEX_HOME is the one checked (and codex's)
        os.environ["CODEX_HOME"] = home
    return asyncio.run(_doctor(config))
