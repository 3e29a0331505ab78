"""The accounts a provider runs turns on, and which agent is on which.

An account is one codex login: its ``CODEX_HOME`` (threads, rollouts, the login itself), its own
engine (an app-server of its own: codex serves one CODEX_HOME per process), its admission (see
:mod:`.admission`). One account is what a plugin without ``accounts`` in its config has: the
environment's CODEX_HOME, as before.

Each account's limit is its own ``max_concurrent_turns``, else the config's, else what its login
gets by default (:func:`.admission.default_limit`); what codex reports of its rate limits is handed
on with its name and CODEX_HOME.

An agent stays on one account: its threads live in that account's CODEX_HOME, and another
account's codex would not find them (a consume, which assigns no account, looks in every one). The
operator may pin agents (an account's ``agents``); any other agent goes, on its first turn, to the
account with the least load (running and waiting turns for each turn it may run), and is
remembered there, in ``<state dir>/accounts.json`` (written atomically, read distrustfully:
anything malformed is no assignment, and the agent is assigned again).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._codex.home import codex_home
from .._codex.login import LoginState
from .._codex.rollout import RolloutLocator
from .._engine.seam import Engine
from .._engine.select import EngineInfo
from .._io.files import NotRegularFile, atomic_write, read_small_regular_file
from ..config import AccountConfig, HostConfig
from .admission import Admission, default_limit

__all__ = ["ASSIGNMENTS_FILE", "Account", "Accounts", "StartedAccount"]

log = logging.getLogger(__name__)

ASSIGNMENTS_FILE = "accounts.json"
_READ_LIMIT = 4 * 1024 * 1024

# An account as the provider started it: its name, its engine, which engine that is, its login.
StartedAccount = tuple[str, Engine, EngineInfo, LoginState]


@dataclass
class Account:
    name: str
    codex_home: Path
    env: dict[str, str]  # the environment codex runs with (its CODEX_HOME)
    engine: Engine
    engine_info: EngineInfo
    locator: RolloutLocator
    admission: Admission
    login: LoginState

    def snapshot(self, *, held: bool = False) -> dict[str, Any]:
        """The account now, as plain data: its admission, CODEX_HOME, login and engine (with
        ``held``, also what the engine holds now: its codex process, its loaded threads)."""
        engine = self.engine_info.describe()
        if held:
            now = self.engine.status()
            engine |= {"process": now.get("process"), "loaded_threads": now.get("loaded_threads")}
        return {
            **self.admission.snapshot(),
            "codex_home": str(self.codex_home),
            "login": self.login.describe(),
            "engine": engine,
        }


class Accounts:
    """The accounts, in the operator's order (the first is the default), and the agents on each."""

    def __init__(
        self,
        accounts: Sequence[Account],
        pinned: Mapping[str, str],
        folder: Path | None,
    ) -> None:
        assert accounts, "at least one account"
        self.all = list(accounts)
        self._by_name = {a.name: a for a in accounts}
        self._pinned = dict(pinned)
        self._file = folder / ASSIGNMENTS_FILE if folder is not None and len(accounts) > 1 else None
        self._assigned: dict[str, str] = self._load()

    @classmethod
    def configured(
        cls,
        config: HostConfig,
        env: Mapping[str, str],
        started: Sequence[StartedAccount],
        folder: Path | None,
        on_rate_limits: Callable[[dict[str, Any]], None],
    ) -> Accounts:
        """The accounts started for ``config`` (its ``accounts``, else the environment's
        CODEX_HOME as ``default``), with the agents it pins; ``on_rate_limits`` is told what codex
        reports of an account's rate limits anew."""
        by_name = {a.name: a for a in config.accounts}
        accounts = [
            _account(config, by_name.get(name), env, name, engine, info, login, on_rate_limits)
            for name, engine, info, login in started
        ]
        pinned = {agent: a.name for a in config.accounts for agent in a.agents}
        return cls(accounts, pinned, folder)

    @property
    def default(self) -> Account:
        return self.all[0]

    def of(self, agent_id: str) -> Account:
        """The agent's account: pinned, remembered, else the least loaded (and remembered)."""
        if len(self.all) == 1:
            return self.all[0]
        name = self._pinned.get(agent_id) or self._assigned.get(agent_id)
        account = self._by_name.get(name) if name is not None else None
        if account is not None:
            return account
        account = min(self.all, key=_load)
        self._assigned[agent_id] = account.name
        self._save()
        log.info("agent %r: on account %s (the least loaded)", agent_id, account.name)
        return account

    def known(self, agent_id: str) -> Account | None:
        """The agent's account if it has one yet (a consume assigns none)."""
        if len(self.all) == 1:
            return self.all[0]
        name = self._pinned.get(agent_id) or self._assigned.get(agent_id)
        return self._by_name.get(name) if name is not None else None

    def snapshots(self, *, held: bool = False) -> list[dict[str, Any]]:
        """Each account now, as plain data (see :meth:`Account.snapshot`)."""
        return [account.snapshot(held=held) for account in self.all]

    def find_thread(self, agent_id: str, thread_id: str) -> tuple[Account, Path] | None:
        """The thread's account and rollout: the agent's account first, then every other (an
        agent whose assignment was lost still has its threads where they were). Reads folders."""
        known = self.known(agent_id)
        for account in [known] if known is not None else []:
            path = account.locator.find(thread_id)
            if path is not None:
                return account, path
        for account in self.all:
            if account is not known and (path := account.locator.find(thread_id)) is not None:
                return account, path
        return None

    def _load(self) -> dict[str, str]:
        if self._file is None:
            return {}
        try:
            content = read_small_regular_file(self._file, _READ_LIMIT)
        except (NotRegularFile, OSError):
            return {}
        if content is None or content.truncated:
            return {}
        try:
            data = json.loads(content.data)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            log.warning("%s does not hold agents' accounts; it is ignored", self._file)
            return {}
        return {k: v for k, v in data.items() if isinstance(v, str) and v in self._by_name}

    def _save(self) -> None:
        if self._file is None:
            return
        try:
            self._file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(self._file, json.dumps(self._assigned, sort_keys=True).encode() + b"\n")
        except OSError as exc:
            log.warning("the agents' accounts were not written to %s: %s", self._file, exc)


def _account(
    config: HostConfig,
    configured: AccountConfig | None,
    env: Mapping[str, str],
    name: str,
    engine: Engine,
    info: EngineInfo,
    login: LoginState,
    on_rate_limits: Callable[[dict[str, Any]], None],
) -> Account:
    account_env = dict(env)
    if configured is not None:
        account_env["CODEX_HOME"] = configured.codex_home
    home = codex_home(account_env)
    limit = (
        (configured.max_concurrent_turns if configured is not None else None)
        or config.max_concurrent_turns
        or default_limit(login.method)
    )

    def reported(admission: Admission) -> None:
        on_rate_limits(
            {
                "account": admission.name,
                "codex_home": str(home),
                "rate_limits": admission.rate_limits,
            }
        )

    admission = Admission(limit, name=name, on_report=reported)
    return Account(name, home, account_env, engine, info, RolloutLocator(home), admission, login)


def _load(account: Account) -> float:
    admission = account.admission
    return admission.load / max(admission.ceiling, 1)
