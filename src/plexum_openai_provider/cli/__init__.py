"""``plexum-openai-provider-plugin``: argv routing.

* no argument or ``serve``: the plugin protocol on stdio (what the Plexum host starts);
* ``mcp-host``: the MCP bridge that codex starts during a turn;
* ``run``, ``chat``, ``doctor``, ``login``, ``logout``, ``status``: the commands people use.
"""

from __future__ import annotations

# Only the standard library at module level: `mcp-host` is started by codex on every tool turn,
# and each command imports what it needs when it runs.
import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from .._version import __version__

__all__ = ["main"]

log = logging.getLogger("plexum_openai_provider")

EXIT_USAGE = 2
MODEL_HELP = "an advertised model, or one codex lists (`codex debug models`; default: the first)"
EFFORT_HELP = "the model's reasoning effort, e.g. low, medium, high (default: the model's)"

# The bare command with a terminal on stdin: a person, not a host (a host gives it pipes).
BARE_TTY = f"""plexum-openai-provider-plugin {__version__}: the Plexum provider plugin for the OpenAI Codex CLI.
Run with no command, it speaks the plugin protocol (JSON-RPC lines) on stdin and stdout, for the
Plexum host that starts it; a terminal gives it no host, so it stops here.
  plexum-openai-provider-plugin chat --demo     talk to an agent (a scripted model, no login)
  plexum-openai-provider-plugin doctor          check the codex install and login
  plexum-openai-provider-plugin --help          every command
  plexum-openai-provider-plugin serve           speak the protocol on this terminal anyway"""


def _setup_logging(level: int) -> None:
    # stdout is the protocol (serve, mcp-host) or the answer (run): logs always go to stderr.
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("PLEXUM_LOG_FORMAT", "").lower() == "json":
        from .._io.logs import JsonFormatter  # stdlib only

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plexum-openai-provider-plugin",
        description="Plexum provider plugin for the OpenAI Codex CLI.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="speak the plugin protocol on stdio (the default)")
    sub.add_parser("mcp-host", help="the MCP bridge codex starts during a turn (not for people)")
    run = sub.add_parser("run", help="run one agent turn and stream the answer")
    run.add_argument("--workspace", type=Path, help="the agent's workspace folder")
    run.add_argument("--demo", action="store_true", help="a scripted model, no login, no network")
    run.add_argument("--agent", default="cli", help="agent id (default: cli)")
    run.add_argument("--model", help=MODEL_HELP)
    run.add_argument("--effort", help=EFFORT_HELP)
    run.add_argument("--config", type=Path, help="JSON file with HostConfig keys")
    run.add_argument("--json", action="store_true", help="print canonical events as JSON lines")
    run.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="FILE",
        help="an image to send with the message (repeatable)",
    )
    run.add_argument(
        "--system",
        metavar="TEXT",
        help="the agent's instructions (a system message); @FILE reads them from FILE",
    )
    run.add_argument(
        "message",
        help="the user's message; '-' reads it from stdin (put '--' before a message"
        " that starts with '-')",
    )
    chat = sub.add_parser("chat", help="talk to an agent by hand, through the plugin process")
    chat.add_argument("--workspace", type=Path, help="the agent's workspace folder")
    chat.add_argument("--agent", default="chat", help="agent id (default: chat)")
    chat.add_argument("--config", type=Path, help="JSON file with HostConfig keys")
    chat.add_argument("--demo", action="store_true", help="a scripted model, no login, no network")
    chat.add_argument("--model", help=MODEL_HELP)
    chat.add_argument("--effort", help=EFFORT_HELP)
    chat.add_argument(
        "--system",
        metavar="TEXT",
        help="the agent's instructions (a system message); @FILE reads them from FILE",
    )
    status = sub.add_parser("status", help="what the running plugins of this user are doing")
    status.add_argument("--json", action="store_true", help="the answers as JSON, for scripts")
    status.add_argument(
        "--account", help="only this account of the config: its turns, its agents, its engine"
    )
    doctor = sub.add_parser("doctor", help="check the codex install, login and registrations")
    doctor.add_argument("--config", type=Path, help="JSON file with HostConfig keys")
    doctor.add_argument(
        "--account", help="the config's account (its CODEX_HOME) to check (default: the first)"
    )
    from .login import add_parsers  # stdlib and this package's light modules only

    add_parsers(sub)
    # The global options are taken after the command too (`run --demo -v "hi"`); SUPPRESS: a
    # command that does not see one keeps what was given before it.
    for command in sub.choices.values():
        command.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    wants_help = any(a in ("-h", "--help") for a in args[1:])
    if args[:1] == ["mcp-host"] and not wants_help:
        from .._bridge.relay import relay_main

        return relay_main()
    if not args and sys.stdin.isatty():
        print(BARE_TTY, file=sys.stderr)
        return EXIT_USAGE
    if (not args or args[0] == "serve") and not wants_help:
        from ..plugin.serve import serve_stdio

        _setup_logging(_env_log_level(logging.INFO))
        return serve_stdio()
    parser = _parser()
    ns = parser.parse_args(args)
    _setup_logging(logging.DEBUG if ns.verbose else _env_log_level(logging.WARNING))
    if ns.command == "run":
        from .run import run_command

        return run_command(ns)
    if ns.command == "chat":
        from .chat import chat_command

        return chat_command(ns)
    if ns.command == "status":
        from .status import status_command

        return status_command(ns)
    if ns.command == "doctor":
        from .doctor import doctor_command

        return doctor_command(ns)
    if ns.command in ("login", "logout"):
        from .login import login_command

        return login_command(ns)
    if ns.command in ("serve", "mcp-host"):  # only with --help, which argparse has printed
        return 0
    parser.print_help(sys.stderr)
    return EXIT_USAGE


LOG_LEVELS = ("debug", "info", "warning", "error")


def _env_log_level(default: int) -> int:
    """``PLEXUM_LOG_LEVEL`` (debug, info, warning, error) overrides the command's default; another
    value is warned about and the default kept."""
    value = os.environ.get("PLEXUM_LOG_LEVEL", "")
    if not value:
        return default
    if value.strip().lower() not in LOG_LEVELS:
        print(
            f"warning: PLEXUM_LOG_LEVEL={value!r} is not a log level ({', '.join(LOG_LEVELS)});"
            f" using {logging.getLevelName(default).lower()}",
            file=sys.stderr,
        )
        return default
    return int(getattr(logging, value.strip().upper()))


if __name__ == "__main__":
    raise SystemExit(main())
