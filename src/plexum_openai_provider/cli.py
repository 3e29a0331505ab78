"""``plexum-openai-provider-plugin``: argv routing.

* no argument or ``serve``: the plugin protocol on stdio (what the Plexum host starts);
* ``mcp-host``: the MCP bridge that codex starts during a turn;
* ``run``: one turn from the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import HostConfig, load_config_file
from .errors import ProviderError
from .events import ErrorEvent, Notice, TextDelta, ToolCall, ToolResult, Usage, event_to_dict
from .provider import CodexProvider
from .requests import AgentContext, TurnRequest

__all__ = ["main"]

log = logging.getLogger("plexum_openai_provider")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


def _setup_logging(level: int) -> None:
    # stdout is the protocol (serve, mcp-host) or the answer (run): logs always go to stderr.
    handler = logging.StreamHandler(sys.stderr)
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
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="speak the plugin protocol on stdio (the default)")
    run = sub.add_parser("run", help="run one agent turn and stream the answer")
    run.add_argument("--workspace", required=True, type=Path, help="the agent's workspace folder")
    run.add_argument("--agent", default="cli", help="agent id (default: cli)")
    run.add_argument("--model", help="one of the advertised models (default: the first)")
    run.add_argument("--config", type=Path, help="JSON file with HostConfig keys")
    run.add_argument("--json", action="store_true", help="print canonical events as JSON lines")
    run.add_argument(
        "message",
        help="the user's message; '-' reads it from stdin (put '--' before a message"
        " that starts with '-')",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] == "serve":
        from .plugin.serve import serve_stdio

        _setup_logging(_env_log_level(logging.INFO))
        return serve_stdio()
    parser = _parser()
    ns = parser.parse_args(args)
    _setup_logging(logging.DEBUG if ns.verbose else _env_log_level(logging.WARNING))
    if ns.command == "run":
        return _run_command(ns)
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _env_log_level(default: int) -> int:
    """``PLEXUM_LOG_LEVEL`` (debug, info, warning, error) overrides the command's default."""
    name = os.environ.get("PLEXUM_LOG_LEVEL", "").upper()
    level = logging.getLevelName(name) if name else default
    return level if isinstance(level, int) else default


def _run_command(ns: argparse.Namespace) -> int:
    message = sys.stdin.read() if ns.message == "-" else ns.message
    try:
        config = load_config_file(ns.config) if ns.config else HostConfig()
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    workspace = ns.workspace.expanduser().absolute()
    request = TurnRequest(AgentContext(ns.agent, workspace), message, model=ns.model)
    return asyncio.run(_run_turn(config, request, as_json=ns.json))


async def _run_turn(config: HostConfig, request: TurnRequest, *, as_json: bool) -> int:
    try:
        provider = await CodexProvider.create(config)
        turn = provider.start_turn(request)
    except ProviderError as exc:
        _print_failure(exc.code, exc.message, as_json)
        return EXIT_USAGE if exc.code == "invalid_request" else EXIT_FAILED
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, turn.cancel, "interrupted (Ctrl-C)")
        loop.add_signal_handler(signal.SIGTERM, turn.cancel, "terminated")
    async for event in turn:
        if as_json:
            _print_json(event_to_dict(event))
        else:
            _print_human(event)
    result = await turn.result()
    if as_json:
        _print_json({"type": "result", **result.to_wire()})
    elif result.status != "completed":
        print(f"turn {result.status}", file=sys.stderr)
    return {"completed": 0, "cancelled": EXIT_CANCELLED}.get(result.status, EXIT_FAILED)


def _print_json(data: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _print_failure(code: str, message: str, as_json: bool) -> None:
    if as_json:
        _print_json({"type": "error", "code": code, "message": message, "retryable": False})
    else:
        print(f"error ({code}): {message}", file=sys.stderr)


def _print_human(event: object) -> None:
    if isinstance(event, TextDelta):
        sys.stdout.write(event.text + "\n")
        sys.stdout.flush()
    elif isinstance(event, ToolCall):
        print(f"[tool call {event.block_id}] {event.name} {event.arguments}", file=sys.stderr)
    elif isinstance(event, ToolResult):
        flag = " (error)" if event.is_error else ""
        print(f"[tool result {event.block_id}]{flag} {event.output[:500]}", file=sys.stderr)
    elif isinstance(event, Usage):
        print(
            f"[usage] input {event.input_tokens} (cached {event.cached_input_tokens}),"
            f" output {event.output_tokens} (reasoning {event.reasoning_output_tokens})",
            file=sys.stderr,
        )
    elif isinstance(event, Notice):
        print(f"[notice {event.code}] {event.message}", file=sys.stderr)
    elif isinstance(event, ErrorEvent):
        print(f"[error {event.code}] {event.message}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
