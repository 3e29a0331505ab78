"""``plexum-openai-provider-plugin login | logout``: codex's own login, with what the package
installed and the CODEX_HOME the daemon uses.

The pinned codex of the ``openai-codex-cli-bin`` wheel is not on PATH (the venv's ``bin/`` has
this command, not ``codex``), so "run ``codex login``" is no step an operator can take. This runs
the configured codex (``--config``'s ``binary``; by default the bundled one) with ``login``:

* ``login``: ChatGPT in a browser (codex opens a local callback);
* ``login --device-auth``: a code to type in on another machine's browser (headless servers);
* ``login --with-api-key``: the API key on stdin (``printenv OPENAI_API_KEY | … login
  --with-api-key``);
* ``login status``, ``logout``;
* ``--codex-option ARG`` (repeatable) passes ``ARG`` on to codex (``--codex-option=-c
  --codex-option=forced_login_method=chatgpt``).

CODEX_HOME is the environment's (``~/.codex`` if unset), made 0700 if it does not exist yet: run
it as the daemon's user with the daemon's CODEX_HOME (``sudo -u plexum env
CODEX_HOME=/var/lib/plexum/codex plexum-openai-provider-plugin login --device-auth``). What codex
prints is passed through; nothing of the login is stored or printed by this command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parsers", "login_command"]

EXIT_USAGE = 2


def login_command(ns: argparse.Namespace) -> int:
    from .._codex.binary import resolve_codex
    from .._codex.home import codex_home
    from ..config import HostConfig, load_config_file
    from ..errors import ProviderError

    try:
        config = load_config_file(ns.config) if ns.config else HostConfig()
        account_home = config.account_home(ns.account)
        binary = asyncio.run(resolve_codex(config.binary))
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    home = Path(account_home) if account_home is not None else codex_home()
    argv = [binary.path, *(["logout"] if ns.command == "logout" else ["login"])]
    if ns.command == "login":
        if ns.action == "status":
            argv.append("status")
        elif ns.device_auth and ns.with_api_key:
            print("error: --device-auth or --with-api-key, not both", file=sys.stderr)
            return EXIT_USAGE
        elif ns.device_auth:
            argv.append("--device-auth")
        elif ns.with_api_key:
            argv.append("--with-api-key")
    argv += ns.codex_option
    if not home.exists():
        home.mkdir(mode=0o700, parents=True)
    print(f"codex {binary.version} ({binary.path}), CODEX_HOME {home}", file=sys.stderr)
    return subprocess.run(argv, env={**os.environ, "CODEX_HOME": str(home)}).returncode


def add_parsers(sub: Any) -> None:
    """The ``login`` and ``logout`` commands' arguments (standard library only, as the routing
    is)."""
    login = sub.add_parser(
        "login",
        help="log codex in (ChatGPT in a browser; --device-auth headless; --with-api-key)",
        description="Log the daemon's codex in, in CODEX_HOME (the environment's, else ~/.codex).",
    )
    login.add_argument("action", nargs="?", choices=["status"], help="show the login status")
    login.add_argument(
        "--device-auth", action="store_true", help="a device code, for a machine with no browser"
    )
    login.add_argument("--with-api-key", action="store_true", help="read an API key from stdin")
    logout = sub.add_parser("logout", help="remove codex's stored login from CODEX_HOME")
    for parser in (login, logout):
        parser.add_argument(
            "--config", type=Path, help="JSON file with HostConfig keys (its binary is used)"
        )
        parser.add_argument(
            "--account",
            help="the config's account (its CODEX_HOME) to log in (default: the first)",
        )
        parser.add_argument(
            "--codex-option",
            action="append",
            default=[],
            metavar="ARG",
            help="one more argument for codex's own command (repeatable)",
        )
