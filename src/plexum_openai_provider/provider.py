"""The provider: validates turn requests, starts turns, and keeps one running turn per agent.

Use from Python::

    provider = await CodexProvider.create(HostConfig())
    turn = provider.start_turn(TurnRequest(AgentContext("cx", Path("/srv/agents/cx")), "hello"))
    async for event in turn:
        print(event)
    result = await turn.result()
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from .bridge.manager import BridgeManager
from .codex.binary import CodexBinary, resolve_codex
from .codex.consume import ConsumeOutcome, rewrite_rollout
from .codex.home import codex_home as default_codex_home
from .codex.rollout import RolloutLocator
from .codex.writer_lock import thread_writer_lock
from .config import HostConfig
from .errors import AgentBusyError, InvalidRequestError
from .requests import AgentContext, ConsumeResult, ToolHandler, TurnRequest, validate_tools
from .thread_store import is_thread_id, read_thread_id
from .turn import Turn

__all__ = ["MAX_PROMPT_CHARS", "CodexProvider"]

log = logging.getLogger(__name__)

_TURN_IDS_KEPT = 100_000

# codex 0.163 refuses a longer input ("input_too_large", max_chars 1048576) after it has already
# created a thread: refuse it here, before anything runs.
MAX_PROMPT_CHARS = 1_048_576


class CodexProvider:
    def __init__(
        self,
        config: HostConfig,
        binary: CodexBinary,
        *,
        env: Mapping[str, str] | None = None,
        tool_handler: ToolHandler | None = None,
        socket_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.binary = binary
        self.env: dict[str, str] = dict(os.environ if env is None else env)
        self.codex_home: Path = default_codex_home(self.env)
        self.locator = RolloutLocator(self.codex_home)
        self.bridge = BridgeManager(
            binary.path,
            self.codex_home,
            self.env,
            config.tool_timeout_s,
            tool_handler,
            socket_dir=socket_dir,
        )
        self._running: dict[str, Turn] = {}
        # Held by a turn while its codex runs and by consume while it rewrites: never both.
        self._agent_locks: dict[str, asyncio.Lock] = {}
        # Turn ids seen lately, to refuse a duplicate; bounded so a daemon's memory stays flat.
        self._turn_ids: dict[str, None] = {}

    @classmethod
    async def create(
        cls,
        config: HostConfig | None = None,
        *,
        env: Mapping[str, str] | None = None,
        tool_handler: ToolHandler | None = None,
        socket_dir: Path | None = None,
    ) -> CodexProvider:
        """Resolve the codex binary (ConfigError / CodexNotFoundError if none runs).

        ``tool_handler`` answers the host tools of turns that offer ``tools``."""
        config = config or HostConfig()
        binary = await resolve_codex(config.binary)
        provider = cls(config, binary, env=env, tool_handler=tool_handler, socket_dir=socket_dir)
        if tool_handler is not None:
            provider.bridge.preload()
        return provider

    @property
    def models(self) -> list[str]:
        return list(self.config.supported_models)

    def start_turn(self, request: TurnRequest) -> Turn:
        """Validate and start; raises InvalidRequestError or AgentBusyError before anything runs."""
        self.validate(request)
        if request.agent.id in self._running:
            raise AgentBusyError(request.agent.id)
        turn_id = request.turn_id or f"t-{uuid.uuid4().hex[:12]}"
        if turn_id in self._turn_ids:
            raise InvalidRequestError(f"turn_id {turn_id!r} was already used", field="turn_id")
        self._turn_ids[turn_id] = None
        if len(self._turn_ids) > _TURN_IDS_KEPT:
            del self._turn_ids[next(iter(self._turn_ids))]
        turn = Turn(self, request, turn_id)
        self._running[request.agent.id] = turn
        self.prepare_turn(turn)
        turn.start()
        return turn

    def prepare_turn(self, turn: Turn) -> None:
        """Attach the bridge (and the block reader) to a turn before it runs."""
        self.bridge.attach(turn)

    def validate(self, request: TurnRequest) -> None:
        request.agent.validate()
        if not isinstance(request.prompt, str) or not request.prompt:
            raise InvalidRequestError("the user message is empty", field="messages")
        if len(request.prompt) > MAX_PROMPT_CHARS:
            raise InvalidRequestError(
                f"the user message is {len(request.prompt)} characters long; codex accepts at most"
                f" {MAX_PROMPT_CHARS}",
                field="messages",
            )
        if "\0" in request.prompt:
            raise InvalidRequestError("the user message contains a NUL byte", field="messages")
        if request.model is not None and request.model not in self.config.supported_models:
            raise InvalidRequestError(
                f"model {request.model!r} is not advertised (supported: "
                f"{', '.join(self.config.supported_models)})",
                field="model",
            )
        validate_tools(request.tools)
        if request.tools and self.bridge.tool_handler is None:
            raise InvalidRequestError(
                "this provider has no tool_handler, so it cannot offer tools", field="tools"
            )
        if request.turn_id is not None and (
            not isinstance(request.turn_id, str) or not request.turn_id
        ):
            raise InvalidRequestError("turn_id must be a non-empty string", field="turn_id")

    def agent_lock(self, agent_id: str) -> asyncio.Lock:
        return self._agent_locks.setdefault(agent_id, asyncio.Lock())

    async def consume(
        self, agent: AgentContext, block_ids: Sequence[str], marker: str | None = None
    ) -> ConsumeResult:
        """Rewrite the agent's codex session so that a resumed turn sends the model ``"{}"`` as
        these calls' arguments and ``marker`` as their outputs. Waits for a running turn of the
        agent; takes codex's writer lock of the thread (a codex started meanwhile fails cleanly).
        Raises InvalidRequestError, SessionFormatError, or ThreadBusyError."""
        agent.validate()
        if not isinstance(block_ids, (list, tuple)) or not all(
            isinstance(b, str) and b for b in block_ids
        ):
            raise InvalidRequestError(
                "block_ids must be a list of non-empty strings", field="block_ids"
            )
        if marker is not None and (not isinstance(marker, str) or not marker):
            raise InvalidRequestError("marker must be a non-empty string", field="marker")
        marker = marker or self.config.consume_marker
        ids = list(block_ids)
        async with self.agent_lock(agent.id):
            thread_id = read_thread_id(agent.workspace)
            path = self.locator.find(thread_id) if thread_id and is_thread_id(thread_id) else None
            if thread_id is None or path is None:
                return ConsumeResult([], ids)
            outcome = await asyncio.to_thread(self._rewrite, path, thread_id, ids, marker)
        log.info(
            "consume for agent %r: %d consumed, %d not found%s",
            agent.id,
            len(outcome.consumed),
            len(outcome.not_found),
            "" if outcome.rewritten else " (nothing to rewrite)",
        )
        return ConsumeResult(outcome.consumed, outcome.not_found)

    def _rewrite(self, path: Path, thread_id: str, ids: list[str], marker: str) -> ConsumeOutcome:
        with thread_writer_lock(self.codex_home, thread_id):
            return rewrite_rollout(path, thread_id, ids, marker)

    def _turn_ended(self, turn: Turn) -> None:
        if self._running.get(turn.request.agent.id) is turn:
            del self._running[turn.request.agent.id]

    async def close(self, reason: str = "the plugin is shutting down") -> None:
        """Cancel every running turn, wait for them to end, and for registrations under way."""
        turns = list(self._running.values())
        for turn in turns:
            turn.cancel(reason)
        if turns:
            await asyncio.gather(*(t.result() for t in turns), return_exceptions=True)
        await self.bridge.drain()
