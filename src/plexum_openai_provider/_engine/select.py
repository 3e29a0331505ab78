"""Which engine runs turns: the app-server where it can, exec where it cannot (with the reason).

``engine`` in HostConfig: ``"exec"`` is taken as asked. ``"app-server"`` is taken as asked, on
any codex version; only a failing handshake or live probe falls back to exec. Unset (the default)
means the app-server wherever what it relies on is there (:mod:`.app_server_probe`): codex 0.163
or later, its schema, a handshake and a live thread that behaves; plus ``extra_args`` that
``codex app-server`` takes too. Otherwise exec, and the reason, naming the missing piece, is told
to the operator (``initialize`` and each agent's first turn, as a notice). A version newer than
the verified ones is reported (``EngineInfo.newer_than_verified``), not refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._codex.binary import CodexBinary
from .._codex.command import split_app_server_args
from .._codex.limits import Limiter
from ..config import HostConfig
from ..errors import AppServerError, ConfigError
from .app_server import AppServerEngine
from .app_server_probe import OLDEST, VERIFIED_VERSIONS, parse_version, read_schema, schema_gaps
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
    codex_verified: bool = True  # the codex version is one the whole suite passed on
    newer_than_verified: bool = False  # ... and it is newer than all of them

    def describe(self) -> dict[str, Any]:
        """As ``initialize`` reports it (``engine``, and each account's)."""
        return {
            "name": self.name,
            "requested": self.requested,
            "fallback_reason": self.fallback_reason,
        }


IDLE_UNLOAD_ENV = "PLEXUM_IDLE_UNLOAD_S"
MAX_LOADED_ENV = "PLEXUM_MAX_LOADED_THREADS"


def _tuning(env: Mapping[str, str]) -> dict[str, Any]:
    """The app-server's memory against latency: how long an idle thread stays loaded (each costs
    it about 1 MiB idle; a loaded thread's next turn skips a 25-50 ms resume), and how many at most."""
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
    config: HostConfig,
    binary: CodexBinary,
    env: Mapping[str, str],
    limiter: Limiter | None = None,
) -> tuple[Engine, EngineInfo]:
    requested = config.engine or "app-server"
    verified = binary.version in VERIFIED_VERSIONS
    version = parse_version(binary.version)
    newest = max(parse_version(v) or OLDEST for v in VERIFIED_VERSIONS)
    newer = version is not None and version > newest
    exec_engine = ExecEngine(binary.path, env, config.extra_args, limiter)
    if requested == "exec":
        return exec_engine, EngineInfo("exec", "exec", None, verified, newer)

    def fallback(reason: str) -> tuple[Engine, EngineInfo]:
        log.warning("using the exec engine: %s", reason)
        return exec_engine, EngineInfo("exec", requested, reason, verified, newer)

    tuning = _tuning(env)
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
    if config.engine is None:
        oldest = ".".join(map(str, OLDEST))
        if version is None or version < OLDEST:
            return fallback(
                f"codex {binary.version} is older than {oldest}, the oldest the app-server engine"
                " runs on"
            )
        try:
            gaps = schema_gaps(*await read_schema(binary.path, env))
        except (OSError, ValueError) as exc:
            return fallback(f"codex {binary.version} printed no app-server schema: {exc}")
        if gaps:
            return fallback(
                f"codex {binary.version}'s app-server lacks what the engine relies on:"
                f" {', '.join(gaps)}; set engine to 'app-server' to use it anyway"
            )
    engine = AppServerEngine(binary.path, env, usable, limiter=limiter, **tuning)
    try:
        await engine.start()
    except AppServerError as exc:
        await engine.close()
        return fallback(f"codex app-server could not be started: {exc.message}")
    if newer:
        log.info(
            "codex %s is newer than the versions verified (%s); its app-server passed the probe",
            binary.version,
            ", ".join(sorted(VERIFIED_VERSIONS)),
        )
    return engine, EngineInfo("app-server", requested, None, verified, newer)
