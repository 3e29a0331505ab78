"""Finding the codex binary and asking it its version.

Order: the configured ``binary`` (an absolute path, or a name looked up on PATH) → the codex shipped
by ``openai-codex-cli-bin`` (a pinned, tested version, and no PATH trouble under systemd) → ``codex``
on PATH.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import CodexNotFoundError, CodexProcessError, ConfigError
from .guard import run_briefly

__all__ = ["CodexBinary", "bundled_codex", "resolve_codex"]

log = logging.getLogger(__name__)

_VERSION_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class CodexBinary:
    path: str
    version: str

    @property
    def package(self) -> str:
        """The folder of codex's native binary and what ships with it (``codex-path``,
        ``codex-resources`` with its bubblewrap): what a sandboxed command must be able to read,
        since bubblewrap runs codex's binary as its helper."""
        return native_package(self.path)

    @property
    def native(self) -> str:
        """codex's native binary (npm's ``codex`` is a node wrapper that runs it)."""
        inside = os.path.join(self.package, "bin", "codex")
        return inside if _is_elf(inside) else os.path.realpath(self.path)


# npm's codex (``bin/codex.js``, a node wrapper) runs the native binary of its platform package,
# as its codex.js finds it (0.169/0.171): node_modules/@openai/codex-linux-<arch>/vendor/<triple>.
_NPM_TARGETS = {
    "x86_64": ("x64", "x86_64-unknown-linux-musl"),
    "amd64": ("x64", "x86_64-unknown-linux-musl"),
    "aarch64": ("arm64", "aarch64-unknown-linux-musl"),
    "arm64": ("arm64", "aarch64-unknown-linux-musl"),
}


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def native_package(binary: str) -> str:
    """The folder that holds codex's native binary (in ``bin/``) and its resources: the parent of
    that ``bin`` folder, for the wheel's binary and for npm's wrapper alike."""
    real = os.path.realpath(binary)
    folder = os.path.dirname(real)
    if os.path.basename(folder) == "bin":
        folder = os.path.dirname(folder)
    if _is_elf(real):
        return folder
    target = _NPM_TARGETS.get(os.uname().machine)
    if target is not None:
        arch, triple = target
        platform = os.path.join("@openai", f"codex-linux-{arch}", "vendor", triple)
        for candidate in (
            os.path.join(folder, "node_modules", platform),
            os.path.join(os.path.dirname(os.path.dirname(folder)), platform),
            os.path.join(folder, "vendor", triple),
        ):
            if _is_elf(os.path.join(candidate, "bin", "codex")):
                return candidate
    return folder


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
    done = await run_briefly([path, "--version"], timeout=_VERSION_TIMEOUT_S)
    if done.returncode is None:
        raise CodexProcessError(f"`{path} --version` did not answer in {_VERSION_TIMEOUT_S:.0f} s")
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip()[-500:]
        raise CodexProcessError(
            f"`{path} --version` exited with {done.returncode}: {tail}",
            exit_code=done.returncode,
            stderr_tail=tail,
        )
    text = done.stdout.decode(errors="replace").strip()
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
