"""Finding the codex binary and asking it its version.

Order: the configured ``binary`` (an absolute path, or a name looked up on PATH) → the codex shipped
by ``openai-codex-cli-bin`` (a pinned, tested version, and no PATH trouble under systemd) → ``codex``
on PATH.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import CodexNotFoundError, CodexProcessError, ConfigError
from .guard import guard

__all__ = ["CodexBinary", "bundled_codex", "resolve_codex"]

log = logging.getLogger(__name__)

_VERSION_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class CodexBinary:
    path: str
    version: str


def bundled_codex() -> str | None:
    """The codex of the ``openai-codex-cli-bin`` wheel, if it is installed and present."""
    try:
        import codex_cli_bin  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        path = Path(codex_cli_bin.bundled_codex_path())
    except Exception:  # a wheel for another platform raises here
        return None
    return str(path) if path.is_file() else None


def _candidates(binary: str | None) -> list[str]:
    if binary is not None:
        if os.path.isabs(binary):
            if not os.path.isfile(binary):
                raise ConfigError(
                    f"config key 'binary' has an invalid value {binary!r}: no such file",
                    key="binary",
                    value=binary,
                )
            return [binary]
        found = shutil.which(binary)
        if found is None:
            raise ConfigError(
                f"config key 'binary' has an invalid value {binary!r}: not found on PATH"
                f" ({os.environ.get('PATH', '')}); give an absolute path",
                key="binary",
                value=binary,
            )
        return [found]
    out = []
    bundled = bundled_codex()
    if bundled:
        out.append(bundled)
    on_path = shutil.which("codex")
    if on_path and on_path not in out:
        out.append(on_path)
    return out


async def codex_version(path: str) -> str:
    """``codex --version`` (e.g. ``codex-cli 0.163.0`` → ``0.163.0``); OSError or
    CodexProcessError."""
    proc = await asyncio.create_subprocess_exec(
        path,
        "--version",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    keeper = guard()
    keeper.spawned.add(proc.pid)  # asyncio reaps it, not the guard's sweep
    try:
        out, err = await asyncio.wait_for(proc.communicate(), _VERSION_TIMEOUT_S)
    except TimeoutError:
        ending = keeper.end([proc.pid])  # SIGTERM, then SIGKILL after the grace
        await proc.wait()
        if ending is not None:
            await ending
        raise CodexProcessError(
            f"`{path} --version` did not answer in {_VERSION_TIMEOUT_S:.0f} s"
        ) from None
    finally:
        if proc.returncode is not None:
            keeper.spawned.discard(proc.pid)
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip()[-500:]
        raise CodexProcessError(
            f"`{path} --version` exited with {proc.returncode}: {tail}",
            exit_code=proc.returncode,
            stderr_tail=tail,
        )
    text = out.decode(errors="replace").strip()
    return text.split()[-1] if text else "unknown"


async def resolve_codex(binary: str | None = None) -> CodexBinary:
    """The first candidate that runs; :class:`CodexNotFoundError` (or ConfigError) otherwise."""
    candidates = _candidates(binary)
    problems = []
    for path in candidates:
        try:
            version = await codex_version(path)
        except (OSError, CodexProcessError) as exc:
            problems.append(f"{path}: {exc}")
            if binary is not None:
                raise ConfigError(
                    f"config key 'binary' has an invalid value {binary!r}: it does not run ({exc})",
                    key="binary",
                    value=binary,
                ) from None
            continue
        log.info("codex binary %s, version %s", path, version)
        return CodexBinary(path=path, version=version)
    detail = "; ".join(problems) if problems else "no bundled codex and no `codex` on PATH"
    raise CodexNotFoundError(
        f"no codex binary that runs ({detail}). Fix: `pip install openai-codex-cli-bin` (installed"
        " with this package), or set `binary` in the config to the absolute path of codex",
        tried=candidates,
    )
