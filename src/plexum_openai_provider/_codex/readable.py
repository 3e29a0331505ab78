"""What a confined agent may read besides its workspace and what codex calls ``:minimal``: the
least its programs need.

For each folder of the daemon's ``PATH``: the folder itself, and what its executables resolve
into, never the folder's parent (``~/.local/bin`` once made all of ``~/.local`` readable, other
agents' workspaces under ``~/.local/share`` included; ``~/.cargo/bin`` all of ``~/.cargo``, its
``credentials.toml`` included):

* an executable that is a link: the folder its target lies in, or for a target in a ``bin`` or
  ``sbin`` folder that folder's parent, the installation it belongs to (pipx's
  ``~/.local/bin/x`` → ``~/.local/share/pipx/venvs/x``; nvm's ``npm`` →
  ``…/lib/node_modules/npm``);
* a script's interpreter, resolved the same way (a pipx venv's ``python`` → the pyenv version it
  was made from);
* pyenv's shims (scripts that run ``$PYENV_ROOT/libexec/pyenv``, which picks a version from
  ``$PYENV_ROOT/version``): ``libexec``, ``versions`` and the ``version`` file;
* rustup's proxies (``cargo``, ``rustc`` are links to ``rustup``): ``RUSTUP_HOME``, else the
  ``.rustup`` beside the ``.cargo`` they are in, where the toolchains are.

Never readable: a folder that holds, or lies in, CODEX_HOME, the plugin's socket or lock folder
or a known credential file (:data:`CREDENTIALS`, in the user's home); the whole home; ``/``.
Such a toolchain folder is left out (and logged); an operator's ``sandbox_readable`` entry is
refused (:func:`~.sandbox_probe.choose_policy`). A workspace only known when its turn comes is
checked then (:meth:`~.policy.AgentPolicy.for_workspace`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

__all__ = [
    "CREDENTIALS",
    "MINIMAL",
    "credential_paths",
    "exposed",
    "readable_folders",
    "toolchain_folders",
    "within",
]

# Where credentials live, relative to the user's home.
CREDENTIALS = (
    ".ssh",
    ".aws",
    ".azure",
    ".netrc",
    ".git-credentials",
    ".config/git/credentials",
    ".config/gh",
    ".config/hub",
    ".config/gcloud",
    ".kube",
    ".docker/config.json",
    ".pypirc",
    ".npmrc",
    ".yarnrc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".gem/credentials",
    ".terraform.d/credentials.tfrc.json",
    ".vault-token",
    ".pgpass",
    ".my.cnf",
    ".gnupg",
    ".password-store",
    ".local/share/keyrings",
    ".codex",
)
# What codex's `:minimal` makes readable already.
MINIMAL = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_SHEBANG_BYTES = 256


def within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def credential_paths(home: str | None) -> list[str]:
    if not home:
        return []
    return [os.path.join(os.path.realpath(home), name) for name in CREDENTIALS]


def exposed(folder: str, guarded: Iterable[str]) -> str | None:
    """The first of ``guarded`` that ``folder`` holds or lies in (both real paths)."""
    return next((g for g in guarded if within(g, folder) or within(folder, g)), None)


def _installation(target: str) -> str:
    folder = os.path.dirname(target)
    if os.path.basename(folder) in ("bin", "sbin") and os.path.dirname(folder) != "/":
        return os.path.dirname(folder)
    return folder


def _interpreter(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(_SHEBANG_BYTES)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    if not words or not words[0].startswith(b"/"):
        return None
    return os.fsdecode(words[0])


def toolchain_folders(path_env: str, rustup_home: str | None = None) -> list[str]:
    """The folders the daemon's ``PATH`` needs readable (see the module docstring), real paths,
    in PATH order, each once."""
    out: list[str] = []
    for entry in path_env.split(os.pathsep):
        if not entry or not os.path.isabs(entry) or not os.path.isdir(entry):
            continue
        folder = os.path.realpath(entry)
        out.append(folder)
        rustup = rustup_home
        if rustup is None and folder.endswith("/.cargo/bin"):  # rustup's own default beside it
            rustup = os.path.join(os.path.dirname(os.path.dirname(folder)), ".rustup")
        root = os.path.dirname(folder)
        if os.path.basename(folder) == "shims" and os.path.isfile(
            os.path.join(root, "libexec", "pyenv")
        ):
            out += [
                p
                for p in (os.path.join(root, n) for n in ("libexec", "versions", "version"))
                if os.path.exists(p)
            ]
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.isfile(path) or not os.access(path, os.X_OK):
                continue
            targets = [os.path.realpath(path)]
            interpreter = _interpreter(targets[0])
            if interpreter is not None:
                targets.append(os.path.realpath(interpreter))
            for target in targets:
                if os.path.basename(target) == "rustup" and rustup and os.path.isdir(rustup):
                    out.append(os.path.realpath(rustup))
                if not within(target, folder) and not any(within(target, m) for m in MINIMAL):
                    out.append(_installation(target))
    return list(dict.fromkeys(out))


def readable_folders(
    *,
    codex_package: str,
    path_env: str,
    operator: Sequence[str],
    never: Iterable[str],
    home: str | None,
    rustup_home: str | None = None,
) -> tuple[list[str], list[str]]:
    """(the folders an agent may read besides its workspace, what was left out and why).

    codex's package (its native binary: bubblewrap runs it as its helper; its
    ``codex-resources`` hold the bubblewrap it ships) and the PATH's toolchains, unless one is
    ``/``, the home, or would expose a folder in ``never`` or a credential file; ``operator``
    folders are the operator's ``sandbox_readable``, checked by the caller. What ``:minimal``
    has, or another folder here holds, is not named again (each is a bind mount per command)."""
    guarded = [os.path.realpath(p) for p in never] + credential_paths(home)
    real_home = os.path.realpath(home) if home else None
    left_out: list[str] = []
    out: list[str] = []
    for folder in [codex_package, *toolchain_folders(path_env, rustup_home)]:
        folder = os.path.realpath(folder)
        if any(within(folder, m) for m in MINIMAL):
            continue
        if folder == "/" or folder == real_home:
            left_out.append(f"{folder} (the whole home or root)")
            continue
        holds = exposed(folder, guarded)
        if holds is not None:
            left_out.append(f"{folder} (it holds {holds})")
            continue
        out.append(folder)
    out += operator
    kept = [
        f
        for i, f in enumerate(out)
        if f not in out[:i]
        and not any(within(f, m) for m in MINIMAL)
        and not any(within(f, other) for other in out if other != f)
    ]
    return kept, list(dict.fromkeys(left_out))
