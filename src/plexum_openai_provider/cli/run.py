"""``plexum-openai-provider-plugin run``: one agent turn from the terminal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

from .._codex.guard import guard
from ..config import HostConfig, load_config_file
from ..conversation import ChatMessage, ImagePart, TextPart
from ..errors import ConfigError, ProviderError
from ..events import (
    ACTIVITY_TYPES,
    BASE_TYPES,
    ErrorEvent,
    Notice,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
    event_to_dict,
)
from ..provider import CodexProvider
from ..requests import AgentContext, TurnRequest

__all__ = ["run_command"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130


def instructions_arg(value: str | None) -> str | None:
    """``--system``: the text, or ``@FILE``'s content (ProviderError if it cannot be read)."""
    if value is None or not value.startswith("@"):
        return value
    try:
        return Path(value[1:]).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"--system {value}: cannot read {value[1:]}: {exc.strerror}", key="system"
        ) from None


def conversation(message: str, images: list[str], system: str | None) -> tuple[ChatMessage, ...]:
    """The turn's messages: the instructions, and the message with its images."""
    parts: list[TextPart | ImagePart] = [TextPart(message)]
    parts += [ImagePart(Path(i).expanduser().absolute(), None) for i in images]
    messages = [ChatMessage("user", tuple(parts))]
    if system:
        messages.insert(0, ChatMessage("system", (TextPart(system),)))
    return tuple(messages)


def login_warning(logged_in: bool | None) -> None:
    """Say up front that codex is not logged in (``initialize``'s ``login.logged_in``), and the
    fix, rather than let the turn fail ``unauthorized``."""
    if logged_in is False:
        print(
            "warning: codex is not logged in: turns fail `unauthorized` unless codex's model"
            " provider needs no login. Fix: plexum-openai-provider-plugin login (--device-auth"
            " on a machine with no browser)",
            file=sys.stderr,
        )


def run_command(ns: argparse.Namespace) -> int:
    message = sys.stdin.read() if ns.message == "-" else ns.message
    if not message.strip():
        where = "stdin" if ns.message == "-" else "the message argument"
        print(f"error: the message is empty ({where}): there is nothing to send", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config_file(ns.config) if ns.config else HostConfig()
        system = instructions_arg(ns.system)
    except ProviderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with contextlib.ExitStack() as stack:
        env = None
        if ns.workspace is not None:
            workspace = ns.workspace.expanduser().resolve()  # a confined agent's is its real path
        elif ns.demo:
            workspace = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="plexum-run-")))
        else:
            print("error: --workspace is required (or use --demo)", file=sys.stderr)
            return EXIT_USAGE
        if ns.demo:
            from ..testing.demo import demo_environment  # the scripted model, for --demo only

            demo = demo_environment(
                dict(os.environ),
                workspace=workspace if ns.workspace is not None else None,
                binary=config.binary,
            )
            env = stack.enter_context(demo).env
        request = TurnRequest(
            AgentContext(ns.agent, workspace),
            model=ns.model,
            effort=ns.effort,
            messages=conversation(message, ns.image, system),
            # --json prints every event there is (a script ignores types it does not know).
            events=BASE_TYPES | ACTIVITY_TYPES if ns.json else BASE_TYPES,
        )
        try:
            return asyncio.run(_run_turn(config, request, as_json=ns.json, env=env))
        except KeyboardInterrupt:  # before the turn's own Ctrl-C handling
            return EXIT_CANCELLED
    return EXIT_USAGE


async def _run_turn(
    config: HostConfig, request: TurnRequest, *, as_json: bool, env: dict[str, str] | None
) -> int:
    guard().enable_subreaper()  # this process owns the turn: what codex orphans is ended here
    try:
        provider = await CodexProvider.create(config, env=env)
    except ProviderError as exc:
        _print_failure(exc.code, exc.message, as_json)
        return EXIT_USAGE if exc.code == "invalid_request" else EXIT_FAILED
    if env is None and not as_json:  # --demo's scripted model needs no login
        login_warning(provider.login.logged_in)
    try:
        turn = await provider.start_turn(request)
    except ProviderError as exc:
        await provider.close()
        _print_failure(exc.code, exc.message, as_json)
        return EXIT_USAGE if exc.code == "invalid_request" else EXIT_FAILED
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, turn.cancel, "interrupted (Ctrl-C)")
        loop.add_signal_handler(signal.SIGTERM, turn.cancel, "terminated")
    open_line = False  # the answer streams: a newline only where it ends
    async for event in turn:
        if as_json:
            _print_json(event_to_dict(event))
        elif isinstance(event, TextDelta):
            sys.stdout.write(event.text)
            sys.stdout.flush()
            open_line = not event.text.endswith("\n")
        else:
            if open_line:  # what goes to stderr starts a line of its own, not the answer's end
                sys.stdout.write("\n")
                sys.stdout.flush()
                open_line = False
            _print_human(event)
    if open_line:
        sys.stdout.write("\n")
    result = await turn.result()
    await provider.close()
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
    if isinstance(event, ToolCall):
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
