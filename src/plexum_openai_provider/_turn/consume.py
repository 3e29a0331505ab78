"""Consume: tool outputs taken out of an agent's codex session, so that its next turn no longer
sends them to the model.

A consume never rewrites a live thread. In order: the agent's lock (a running turn of the agent
ends first, so its answer is in the file the rewrite reads); the workspace's lock (another plugin
process may work there); the thread the workspace records, looked for in the agent's account's
CODEX_HOME, else in every account's (an assignment that was lost); the engine lets go of the
thread (a loaded thread's history is in codex's memory, and its later records would go to the
replaced file); codex's own writer lock of the thread (a codex started meanwhile fails cleanly);
the rewrite itself (``_codex/consume.py``: a temporary file, fsync, rename).

A consume killed mid-rewrite leaves its temporary beside the rollout: :func:`sweep_rewrites`
removes them when a provider starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from .._codex.consume import ConsumeOutcome, rewrite_rollout
from .._codex.writer_lock import thread_writer_lock
from .._io.files import sweep_temporaries
from ..errors import InvalidRequestError
from ..requests import AgentContext, ConsumeResult, check_text
from ..telemetry import Telemetry
from .accounts import Accounts
from .agents import Agents
from .thread_store import is_thread_id
from .workspace import WorkspaceGuard, WorkspaceLocks, lock_workspace

__all__ = ["Consumer", "sweep_rewrites"]

log = logging.getLogger(__name__)


class Consumer:
    """The provider's consumes (see the module docstring), on its agents, accounts and locks."""

    def __init__(
        self,
        agents: Agents,
        accounts: Accounts,
        locks: WorkspaceLocks,
        *,
        state_dir: Path,
        guard: WorkspaceGuard | None,
        telemetry: Telemetry,
        marker: str,
    ) -> None:
        self._agents = agents
        self._accounts = accounts
        self._locks = locks
        self._state_dir = state_dir
        self._guard = guard
        self._telemetry = telemetry
        self._marker = marker  # the config's consume_marker: what a consumed output becomes

    async def consume(
        self, agent: AgentContext, block_ids: Sequence[str], marker: str | None = None
    ) -> ConsumeResult:
        """Rewrite the agent's codex session so that a resumed turn sends the model ``"{}"`` as
        these calls' arguments and ``marker`` as their outputs. Raises InvalidRequestError,
        AgentBusyError (another plugin process works in the workspace), SessionFormatError, or
        ThreadBusyError."""
        agent.validate()
        if not isinstance(block_ids, (list, tuple)) or not all(
            isinstance(b, str) and b for b in block_ids
        ):
            raise InvalidRequestError(
                "block_ids must be a list of non-empty strings", field="block_ids"
            )
        check_text(list(block_ids), "block_ids")
        if marker is not None and (not isinstance(marker, str) or not marker):
            raise InvalidRequestError("marker must be a non-empty string", field="marker")
        check_text(marker, "marker")
        marker = marker or self._marker
        ids = list(block_ids)
        async with self._agents.slot(agent.id).lock:
            with self._telemetry.consume(agent.id):
                outcome = await self._consume(agent, ids, marker)
        if outcome is None:
            return ConsumeResult([], ids)
        log.info(
            "consume for agent %r: %d consumed, %d not found%s",
            agent.id,
            len(outcome.consumed),
            len(outcome.not_found),
            "" if outcome.rewritten else " (nothing to rewrite)",
        )
        return ConsumeResult(outcome.consumed, outcome.not_found)

    async def _consume(
        self, agent: AgentContext, ids: list[str], marker: str
    ) -> ConsumeOutcome | None:
        claim = await asyncio.to_thread(
            lock_workspace,
            self._locks,
            agent.id,
            agent.workspace,
            state_dir=self._state_dir,
            guard=self._guard,
            others=self._agents.others_workspaces(agent.id),
        )
        try:
            thread_id = claim.stored.thread_id
            found = None
            if thread_id is not None and is_thread_id(thread_id):
                found = await asyncio.to_thread(self._accounts.find_thread, agent.id, thread_id)
            if thread_id is None or found is None:
                return None
            account, path = found
            # A loaded thread's history is in codex's memory, and its later records would go
            # to the replaced file: the engine lets go of it first.
            await account.engine.release_thread(thread_id)
            return await asyncio.to_thread(
                self._rewrite, path, thread_id, ids, marker, account.codex_home
            )
        finally:
            claim.release()

    @staticmethod
    def _rewrite(
        path: Path, thread_id: str, ids: list[str], marker: str, codex_home: Path
    ) -> ConsumeOutcome:
        with thread_writer_lock(codex_home, thread_id):
            return rewrite_rollout(path, thread_id, ids, marker)


def sweep_rewrites(homes: Sequence[Path]) -> None:
    """Remove what consumes killed mid-rewrite left (full-size temporaries beside rollouts), in
    the background: a long-used CODEX_HOME has many day folders."""

    def sweep() -> None:
        roots = [home / folder for home in homes for folder in ("sessions", "archived_sessions")]
        for root in roots:
            if not root.is_dir():
                continue
            for folder in {p.parent for p in root.rglob(".rollout-*.tmp")}:
                for removed in sweep_temporaries(folder):
                    log.info("removed %s, left by a consume that was killed", removed)

    task = asyncio.ensure_future(asyncio.to_thread(sweep))
    task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)
