"""The provider: turns for agents, one at a time per agent, on a codex engine; and consume.

Use from Python::

    provider = await CodexProvider.create(HostConfig())
    turn = await provider.start_turn(
        TurnRequest(AgentContext("cx", Path("/srv/agents/cx")), "hello")
    )
    async for event in turn:
        print(event)
    result = await turn.result()
    await provider.close()

The provider owns the life cycle and nothing else: it starts the pieces and wires them. Its
agents (each one's lock, running turn and queue, turn ids; what a request for a busy agent
becomes: ``when_busy``) are :mod:`._turn.agents`; its accounts (each login's CODEX_HOME, engine
and admission; which agent is on which) :mod:`._turn.accounts`; consume :mod:`._turn.consume`;
host tools the bridge. A turn is handed what it needs as values
(:class:`~._turn.runner.TurnSetup`) and never reaches back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._bridge.manager import BridgeManager
from ._bridge.names import default_socket_dir
from ._codex.binary import CodexBinary, resolve_codex
from ._codex.guard import guard
from ._codex.home import codex_home as default_codex_home
from ._codex.limits import AgentLimits, Limiter
from ._codex.login import LoginState, login_state
from ._codex.models import CodexModel, choose_model, list_models
from ._codex.policy import UNCONFINED, AgentPolicy
from ._codex.readable import credential_paths
from ._codex.sandbox_probe import choose_policy
from ._engine.seam import Engine
from ._engine.select import EngineInfo, choose_engine
from ._turn.accounts import Accounts, StartedAccount
from ._turn.admission import Admission, backoff_s
from ._turn.agents import Agents, AgentSlot
from ._turn.busy import QueuedTurn, SteeredTurn
from ._turn.consume import Consumer, sweep_rewrites
from ._turn.messages import check_conversation, plan_turn
from ._turn.records import default_state_dir
from ._turn.runner import Turn, TurnSetup, start_turn
from ._turn.workspace import WorkspaceGuard, WorkspaceLocks, claim_workspace, default_lock_dir
from .config import HostConfig
from .errors import AgentBusyError, InvalidRequestError
from .events import Notice
from .requests import WHEN_BUSY, AgentContext, ConsumeResult, ToolHandler, TurnRequest, WhenBusy
from .telemetry import telemetry_from_env, traced

__all__ = ["CodexProvider", "EngineInfo", "choose_agent_policy"]

log = logging.getLogger(__name__)


async def choose_agent_policy(
    config: HostConfig,
    binary: CodexBinary,
    env: Mapping[str, str],
    socket_dir: Path | None = None,
    lock_dir: Path | None = None,
) -> AgentPolicy:
    """The agents' policy (:func:`~._codex.sandbox_probe.choose_policy`): no agent may see a
    CODEX_HOME (the environment's, every account's) or the plugin's socket, lock and state folders
    (the plugin's records of each workspace are in the last: nothing of the plugin's is in a
    workspace to protect)."""
    return await choose_policy(
        config, binary, env, never=_never_seen(config, env, socket_dir, lock_dir), protected=()
    )


def _never_seen(
    config: HostConfig, env: Mapping[str, str], socket_dir: Path | None, lock_dir: Path | None
) -> list[str]:
    return [
        str(default_codex_home(env)),
        *(account.codex_home for account in config.accounts),
        str(socket_dir or default_socket_dir()),
        str(lock_dir or default_lock_dir()),
        str(default_state_dir(env)),
    ]


class CodexProvider:
    def __init__(
        self,
        config: HostConfig,
        engine: Engine,
        *,
        binary: CodexBinary | None = None,
        env: Mapping[str, str] | None = None,
        tool_handler: ToolHandler | None = None,
        socket_dir: Path | None = None,
        lock_dir: Path | None = None,
        engine_info: EngineInfo | None = None,
        policy: AgentPolicy = UNCONFINED,
        limiter: Limiter | None = None,
        login: LoginState | None = None,
        backoff: Callable[[int, float | None], float] = backoff_s,
        more_accounts: Sequence[StartedAccount] = (),
    ) -> None:
        """Most callers want :meth:`create`; this takes a ready engine (tests give a fake), the
        agents' policy (:func:`~._codex.sandbox_probe.choose_policy`), how codex is logged in
        (``max_concurrent_turns``' default), the pause before a throttled turn is sent again
        (:func:`~._turn.admission.backoff_s`) and, with ``accounts`` in the config, the engine
        of each account after the first (``engine`` is the first's)."""
        self.config = config
        self.binary = binary
        self.policy = policy
        self.limiter = limiter  # what bounds each agent's commands (create() makes it)
        self.codex_models: tuple[CodexModel, ...] = ()  # what codex offers (create() asks)
        self._env: dict[str, str] = dict(os.environ if env is None else env)
        self.state_dir: Path = default_state_dir(self._env)  # the workspaces' records
        self._telemetry = telemetry_from_env(self._env)
        self.on_rate_limits: Callable[[dict[str, Any]], None] | None = None
        self._backoff = backoff
        first = config.accounts[0].name if config.accounts else "default"
        login = login or LoginState(None, None)
        info = engine_info or EngineInfo(engine.name, engine.name)
        lock_dir = lock_dir or default_lock_dir()
        # Which account an agent is on lasts as long as its threads: in the state folder (the
        # lock folder may be a tmpfs, gone at a reboot).
        self._accounts = Accounts.configured(
            config,
            self._env,
            [(first, engine, info, login), *more_accounts],
            self.state_dir,
            self._rate_limits_reported,
        )
        default = self._accounts.default
        self.login = default.login  # what `codex login status` said
        self.engine_info = default.engine_info
        self.codex_home: Path = default.codex_home
        self._bridge = BridgeManager(
            self.codex_home,
            config.tool_timeout_s,
            traced(self._telemetry, tool_handler),
            socket_dir=socket_dir,
        )
        self._locks = WorkspaceLocks(lock_dir)
        self._agents = Agents(self._start_queued)
        # Where a confined agent's workspace may not be (another's, codex's homes, credentials).
        self._guard = (
            WorkspaceGuard(
                self.state_dir,
                _never_seen(config, self._env, socket_dir, lock_dir)
                + credential_paths(self._env.get("HOME")),
            )
            if policy.confined
            else None
        )
        self._consumer = Consumer(
            self._agents,
            self._accounts,
            self._locks,
            state_dir=self.state_dir,
            guard=self._guard,
            telemetry=self._telemetry,
            marker=config.consume_marker,
        )

    @property
    def _admission(self) -> Admission:
        """The first account's admission."""
        return self._accounts.default.admission

    @property
    def _engine(self) -> Engine:
        """The first account's engine."""
        return self._accounts.default.engine

    @classmethod
    async def create(
        cls,
        config: HostConfig | None = None,
        *,
        env: Mapping[str, str] | None = None,
        tool_handler: ToolHandler | None = None,
        socket_dir: Path | None = None,
        lock_dir: Path | None = None,
    ) -> CodexProvider:
        """Resolve the codex binary (ConfigError / CodexNotFoundError if none runs), find out the
        agents' sandbox (:func:`~._codex.sandbox_probe.choose_policy`: ConfigError if the one
        asked for cannot work) and start the engine (:func:`~._engine.select.choose_engine`).
        ``tool_handler`` answers the host tools of turns that offer ``tools``."""
        config = config or HostConfig()
        binary = await resolve_codex(config.binary)
        environment = dict(os.environ if env is None else env)
        choosing = asyncio.ensure_future(
            choose_agent_policy(config, binary, environment, socket_dir, lock_dir)
        )
        # Each account: its own CODEX_HOME, engine (an app-server of its own) and login.
        homes: list[str | None] = [a.codex_home for a in config.accounts] or [None]
        envs = [environment if h is None else {**environment, "CODEX_HOME": h} for h in homes]
        asking = [asyncio.ensure_future(login_state(binary.path, e)) for e in envs]
        engines: list[tuple[Engine, EngineInfo]] = []
        listing = asyncio.ensure_future(list_models(binary.path, environment))
        limiter = None
        try:
            if config.sandbox != "none":
                limiter = await asyncio.to_thread(
                    Limiter.open, AgentLimits.from_config(config), binary.native
                )
            for account_env in envs:
                engines.append(await choose_engine(config, binary, account_env, limiter))
            policy = await choosing
            logins = [await a for a in asking]
        except BaseException:
            choosing.cancel()
            for task in [*asking, listing]:
                task.cancel()
            for engine_, _ in engines:
                await engine_.close()
            if limiter is not None:
                limiter.close()
            raise
        names = [a.name for a in config.accounts] or ["default"]
        (engine, info), *others = engines
        provider = cls(
            config,
            engine,
            binary=binary,
            env=environment,
            tool_handler=tool_handler,
            socket_dir=socket_dir,
            lock_dir=lock_dir,
            engine_info=info,
            policy=policy,
            limiter=limiter,
            login=logins[0],
            more_accounts=[
                (name, e, i, login)
                for name, (e, i), login in zip(names[1:], others, logins[1:], strict=True)
            ],
        )
        provider.codex_models = tuple(await listing)
        sweep_rewrites([account.codex_home for account in provider._accounts.all])
        return provider

    @property
    def models(self) -> list[str]:
        return list(self.config.supported_models)

    def status(self) -> dict[str, Any]:
        """What runs now (the ``status`` request): each agent with a running or waiting turn
        (and its account), the first account's engine (its codex process, its loaded threads),
        each account's admission, login and engine."""
        return {
            "agents": self._agents.describe(self.account_of),
            "engine": self._engine.status(),
            "admission": {"accounts": self._accounts.snapshots(held=True)},
        }

    def busy(self, agent_id: str) -> bool:
        """Does the agent have a running turn here (or requests waiting for one)?"""
        return self._agents.busy(agent_id)

    def accounts(self) -> list[dict[str, Any]]:
        """Each account now, as plain data (``initialize``, a status request): its CODEX_HOME,
        its login, its limit, its running and waiting turns, what codex last said of its rate
        limits."""
        return self._accounts.snapshots()

    def account_of(self, agent_id: str) -> str | None:
        """The name of the agent's account, if it has one yet."""
        account = self._accounts.known(agent_id)
        return account.name if account is not None else None

    def _rate_limits_reported(self, report: dict[str, Any]) -> None:
        """codex reported an account's rate limits anew (the protocol server tells the host)."""
        if self.on_rate_limits is not None:
            self.on_rate_limits(report)

    # -- turns -------------------------------------------------------------------------------
    def _validate(self, request: TurnRequest) -> None:
        """What :meth:`TurnRequest.validate` (already done) leaves to the provider."""
        choose_model(self.config, self.codex_models, request.model, request.effort)
        if request.turn_id is not None and self._agents.used(request.turn_id):
            raise InvalidRequestError(
                f"turn_id {request.turn_id!r} was already used", field="turn_id"
            )
        request.check_images(
            readable=self.policy.readable if self.policy.confined else None,
            urls=self.engine_info.name != "exec",  # codex exec takes files and data: URLs
        )
        # Refused before the workspace is claimed (a claim records the agent as its owner).
        check_conversation(request.conversation)

    async def start_turn(
        self, request: TurnRequest, when_busy: WhenBusy = "refuse"
    ) -> Turn | QueuedTurn | SteeredTurn:
        """Validate and start. Raises InvalidRequestError (tools included: without a
        tool_handler the bridge refuses them), AgentBusyError (here or in another plugin
        process), BridgeError or CodexHomeError before anything runs; once a turn is returned,
        every failure is its result.

        ``when_busy``, when the agent has a running turn (or requests waiting for one):
        ``"refuse"`` raises AgentBusyError; ``"steer"`` gives the message to the running turn
        (codex's ``turn/steer``: a :class:`SteeredTurn`, answered at once), or, where codex
        cannot take it, queues it; ``"queue"`` runs it as one of the agent's next turns, in
        order (a :class:`QueuedTurn`, answered with that turn's result)."""
        if self._agents.closed:
            raise AgentBusyError(request.agent.id, holder="a provider that is closing")
        # The request to run: its images read now, once. Not in a worker thread: a request is
        # registered (running, queued) before the host's next message is handled (a cancel of
        # it, say), and at most 8 files of 10 MiB are read.
        request = request.validate()
        self._validate(request)
        if when_busy not in WHEN_BUSY:
            raise InvalidRequestError(
                f"when_busy {when_busy!r} is not known ({', '.join(WHEN_BUSY)})",
                field="when_busy",
            )
        slot = self._agents.slot(request.agent.id)
        turn_id = request.turn_id or f"t-{uuid.uuid4().hex[:12]}"
        if not slot.busy:
            return await self._start(slot, request, turn_id)
        return await self._agents.when_busy(request, turn_id, when_busy)

    async def _start(
        self, slot: AgentSlot, request: TurnRequest, turn_id: str, *, pending: bool = False
    ) -> Turn:
        agent_id = request.agent.id
        bridge = self._bridge.for_turn(turn_id, agent_id, request.tools)
        # Its place at the account is taken now, before anything waits: turns are admitted in
        # the order they came.
        account = self._accounts.of(agent_id)
        ticket = account.admission.enter(turn_id, agent_id)
        slot.starting = True
        self._agents.remember_turn_id(turn_id)
        workspace = str(request.agent.workspace)
        try:
            claim = await asyncio.to_thread(
                claim_workspace,
                self._locks,
                agent_id,
                request.agent.workspace,
                state_dir=self.state_dir,
                codex_home=account.codex_home,
                engine_holds=account.engine.holds_thread,
                owner_known=self._agents.owner_known(agent_id, workspace),
                guard=self._guard,
                others=self._agents.others_workspaces(agent_id),
            )
            self._agents.owner_checked(agent_id, workspace)
            try:
                plan = plan_turn(
                    request.conversation, claim.delivery, claim.stored.thread_id, pending=pending
                )
            except BaseException:
                claim.release()
                raise
        except BaseException:
            ticket.release()
            if not pending:
                self._agents.forget_turn_id(turn_id)  # refused: the host may use the id again
            raise
        finally:
            slot.starting = False
        model, effort = choose_model(self.config, self.codex_models, request.model, request.effort)
        # Nothing below can fail: only now is the turn registered as running.
        setup = TurnSetup(
            request=request,
            turn_id=turn_id,
            engine=account.engine,
            locator=account.locator,
            model=model,
            effort=effort,
            turn_timeout_s=self.config.turn_timeout_s,
            idle_timeout_s=self.config.idle_timeout_s,
            unreachable_timeout_s=self.config.unreachable_timeout_s,
            agent_lock=slot.lock,
            bridge=bridge,
            claim=claim,
            plan=plan,
            policy=self.policy.for_workspace(
                str(request.agent.workspace),
                self._agents.others_workspaces(agent_id),
            ),
            notices=self._notices_for(agent_id),
            trace=self._telemetry.turn(
                agent=agent_id,
                turn_id=turn_id,
                model=request.model or self.config.supported_models[0],
                engine=self._engine.name,
                traceparent=request.traceparent,
            ),
            on_end=lambda: self._agents.ended(agent_id, turn_id),
            ticket=ticket,
            max_retries=self.config.max_turn_retries,
            backoff=self._backoff,
        )
        turn, task = start_turn(setup)
        self._agents.started(agent_id, turn, task)
        return turn

    async def _start_queued(self, slot: AgentSlot, queued: QueuedTurn) -> Turn:
        return await self._start(slot, queued.request, queued.turn_id, pending=True)

    def _notices_for(self, agent_id: str) -> tuple[Notice, ...]:
        """What each agent's first turn is told: the engine fell back, agents are unconfined
        because the sandbox cannot work here."""
        if not self._agents.first_turn(agent_id):
            return ()
        notices = []
        if self.engine_info.fallback_reason is not None:
            notices.append(Notice("engine_fallback", self.engine_info.fallback_reason))
        if self.policy.unavailable:
            notices.append(Notice("sandbox_unavailable", self.policy.reason))
        return tuple(notices)

    def _agent_lock(self, agent_id: str) -> asyncio.Lock:
        return self._agents.slot(agent_id).lock

    # -- consume -----------------------------------------------------------------------------
    async def consume(
        self, agent: AgentContext, block_ids: Sequence[str], marker: str | None = None
    ) -> ConsumeResult:
        """Rewrite the agent's codex session so that a resumed turn sends the model ``"{}"`` as
        these calls' arguments and ``marker`` (default: the config's ``consume_marker``) as their
        outputs. Waits for a running turn of the agent; takes codex's writer lock of the thread (a
        codex started meanwhile fails cleanly). Raises InvalidRequestError, AgentBusyError
        (another plugin process works in the workspace), SessionFormatError, or ThreadBusyError
        (see :mod:`._turn.consume`)."""
        return await self._consumer.consume(agent, block_ids, marker)

    # -- life cycle --------------------------------------------------------------------------
    async def close(self, reason: str = "the plugin is shutting down") -> None:
        """Cancel every running turn, wait for them to end, stop the engine and the bridge, and
        wait for what codex left to be ended (gently, bounded: see ``_codex/guard.py``)."""
        await self._agents.close(reason)
        for account in self._accounts.all:
            await account.engine.close()
        await self._bridge.close()
        await guard().settle()
        await asyncio.to_thread(self._telemetry.close)
        if self.limiter is not None:
            self.limiter.close()
