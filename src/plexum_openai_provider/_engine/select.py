"""Which engine runs turns: the app-server where it can, exec where it cannot (with the reason).

``engine`` in HostConfig: ``"exec"`` is taken as asked. ``"app-server"`` is taken as asked, on
any codex version; only a failing handshake falls back to exec. Unset (the default) means the
app-server where it is known to work: a codex version the engine was verified on, ``extra_args``
that ``codex app-server`` takes too, and a handshake that succeeds; otherwise exec, and the
reason is told to the operator (``initialize`` and each agent's first turn, as a notice).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._codex.binary import CodexBinary
from .._codex.command import split_app_server_args
from ..config import HostConfig
from ..errors import AppServerError, ConfigError
from .app_server import VERIFIED_VERSIONS, AppServerEngine
from .exec import ExecEngine
from .seam import Engine

__all__ = ["EngineInfo", "choose_engine"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineInfo:
    """Which engine runs turns, and why when it is not the one asked for."""

    name: str
    requested: str
    fallback_reason: str | None = None
    codex_verified: bool = True  # the codex version is one the app-server engine was verified on


IDLE_UNLOAD_ENV = "PLEXUM_IDLE_UNLOAD_S"
MAX_LOADED_ENV = "PLEXUM_MAX_LOADED_THREADS"


def _tuning(env: Mapping[str, str]) -> dict[str, Any]:
    """The app-server's memory against latency: how long an idle thread stays loaded (each costs
    it about 10 MiB; a loaded thread's next turn skips a 25-50 ms resume), and how many at most."""
    out: dict[str, Any] = {}
    for key, name, kind in (
        (IDLE_UNLOAD_ENV, "idle_unload_s", float),
        (MAX_LOADED_ENV, "max_loaded", int),
    ):
        value = env.get(key)
        if value is None:
            continue
        try:
            number = kind(value)
        except ValueError:
            number = -1
        if not 0 < number < 10**7:
            raise ConfigError(f"{key}={value!r} must be a positive number", key=key, value=value)
        out[name] = number
    return out


async def choose_engine(
    config: HostConfig, binary: CodexBinary, env: Mapping[str, str]
) -> tuple[Engine, EngineInfo]:
    requested = config.engine or "app-server"
    verified = binary.version in VERIFIED_VERSIONS
    exec_engine = ExecEngine(binary.path, env, config.extra_args)
    if requested == "exec":
        return exec_engine, EngineInfo("exec", "exec", None, verified)

    def fallback(reason: str) -> tuple[Engine, EngineInfo]:
        log.warning("using the exec engine: %s", reason)
        return exec_engine, EngineInfo("exec", requested, reason, verified)

    usable, rest = split_app_server_args(config.extra_args)
    if rest:
        why = (
            f"extra_args {rest} apply to `codex exec` only (`codex app-server` takes -c/--config,"
            " --enable, --disable and --strict-config)"
        )
        if config.engine == "app-server":
            raise ConfigError(
                f"config key 'extra_args' has an invalid value for engine 'app-server': {why}",
                key="extra_args",
                value=list(config.extra_args),
            )
        return fallback(why + "; the exec engine runs every turn")
    if config.engine is None and not verified:
        return fallback(
            f"codex {binary.version} is not a version the app-server engine was verified on"
            f" ({', '.join(sorted(VERIFIED_VERSIONS))}); set engine to 'app-server' to use it"
            " anyway"
        )
    engine = AppServerEngine(binary.path, env, usable, **_tuning(env))
    try:
        await engine.start()
    except AppServerError as exc:
        await engine.close()
        return fallback(f"codex app-server could not be started: {exc.message}")
    return engine, EngineInfo("app-server", requested, None, verified)
