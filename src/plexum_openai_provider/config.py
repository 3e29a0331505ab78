"""HostConfig: the operator's config.json section for this plugin, validated.

Every key is optional. A wrong key, type or value raises :class:`ConfigError` naming the key and
the value, so an operator sees at ``initialize`` (or at ``run --config``) exactly what to fix.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._io.text import lone_surrogate
from .errors import ConfigError

__all__ = [
    "DEFAULT_MODEL",
    "MAX_TIMEOUT_S",
    "AccountConfig",
    "AgentEnvConfig",
    "AgentLimitsConfig",
    "EngineName",
    "HostConfig",
    "ModelChoice",
    "SandboxMode",
    "config_object",
    "load_config_file",
    "read_config_file",
]

DEFAULT_MODEL = "codex"

# A week. Timeouts are also handed to codex (a tool's limit), which refuses a value that does not
# fit its Duration (`tool_timeout_s: 1e300` broke every tool turn), and an infinite turn would
# never be ended: every timeout is finite and at most this.
MAX_TIMEOUT_S = 7 * 24 * 3600.0

EngineName = Literal["app-server", "exec"]
SandboxMode = Literal["workspace", "none"]
# codex's feature flags are lower-case words joined by underscores (`codex features list`).
_FEATURE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# An environment variable's name; in `agent_env.pass` it may end with `*` (every name so begun).
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# What the plugin and codex put in an agent's environment themselves (the process guard's mark,
# codex's thread id): an operator's value would break what relies on them.
RESERVED_ENV = ("PLEXUM_CODEX_OWNER", "CODEX_THREAD_ID")


class AgentEnvConfig(BaseModel):
    """``agent_env``: what a confined agent's commands get of the environment besides what
    programs need (see ``_codex/agent_env.py``): ``pass``, names (or prefixes ending in ``*``)
    whose values come from the plugin's own environment; ``set``, names and values."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    pass_: tuple[str, ...] = Field(default=(), alias="pass")
    set: dict[str, str] = Field(default_factory=dict)

    def check(self) -> None:
        """ConfigError naming ``agent_env`` and the entry at fault."""

        def bad(why: str) -> ConfigError:
            return ConfigError(
                f"config key 'agent_env' has an invalid value: {why}",
                key="agent_env",
                value=self.model_dump(by_alias=True),
            )

        for name in self.pass_:
            if not _ENV_NAME.fullmatch(name.removesuffix("*")):
                raise bad(
                    f"'pass' entry {name!r} is not a variable name (letters, digits and _, not"
                    " starting with a digit; a trailing * passes every name so begun)"
                )
        for name, value in self.set.items():
            if not _ENV_NAME.fullmatch(name):
                raise bad(
                    f"'set' name {name!r} is not a variable name (letters, digits and _, not"
                    " starting with a digit)"
                )
            if "\0" in value:
                raise bad(f"'set' value of {name!r} holds a NUL byte")
        for name in [*self.pass_, *self.set]:
            if name.removesuffix("*").upper() in RESERVED_ENV:
                raise bad(f"{name!r} is the plugin's or codex's own and cannot be given")
        both = sorted(set(self.pass_) & set(self.set))
        if both:
            raise bad(f"{both[0]!r} is both passed and set: name it once")


# codex's reasoning efforts are lower-case words (0.163-0.171: low … xhigh, max, ultra).
EFFORT = re.compile(r"[a-z][a-z0-9_]{0,31}")


class ModelChoice(BaseModel):
    """What an advertised model runs: codex's model (None: codex's default) and, optionally,
    its reasoning effort (None: the model's default)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    model: str | None = Field(default=None, min_length=1)
    effort: str | None = Field(default=None, min_length=1)


_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class AccountConfig(BaseModel):
    """One codex login the agents' turns may run on (see HostConfig ``accounts``)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str
    codex_home: str
    max_concurrent_turns: int | None = Field(default=None, ge=1, le=1024)
    agents: tuple[str, ...] = ()  # agents pinned to this account


def _timeout(default: float) -> Any:
    return Field(default=default, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)


class AgentLimitsConfig(BaseModel):
    """``agent_limits``: what one agent's commands may use (a key left out: the default, see
    _codex/limits.py). Bounded so that a typo cannot hand an agent the machine or starve it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    processes: int | None = Field(default=None, ge=16, le=1_000_000)
    memory_mb: int | None = Field(default=None, ge=64, le=1 << 30)
    file_size_mb: int | None = Field(default=None, ge=1, le=1 << 30)
    cpu_weight: int | None = Field(default=None, ge=1, le=10_000)


class HostConfig(BaseModel):
    """See docs/protocol.md (HostConfig) for the meaning of each key."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    binary: str | None = Field(default=None, min_length=1)
    extra_args: tuple[str, ...] = ()
    supported_models: tuple[str, ...] = Field(default=(DEFAULT_MODEL,), min_length=1)
    # An advertised model → codex's model ("gpt-5.5"), or {"model": …, "effort": …}.
    model_args: dict[str, str | ModelChoice] = Field(default_factory=dict)
    turn_timeout_s: float = _timeout(1800.0)
    idle_timeout_s: float = _timeout(600.0)
    tool_timeout_s: float = _timeout(300.0)
    unreachable_timeout_s: float = _timeout(120.0)
    consume_marker: str = Field(default="...(tool called)", min_length=1)
    # None: the app-server, falling back to exec (with a notice) where it cannot be used.
    engine: EngineName | None = None
    # None: "workspace" where codex's sandbox works on this machine (a probe at start-up), else
    # "none" with a notice.
    sandbox: SandboxMode | None = None
    sandbox_readable: tuple[str, ...] = ()
    sandbox_network: bool = False
    # What a confined agent's commands get of the environment besides what programs need.
    agent_env: AgentEnvConfig = Field(default_factory=AgentEnvConfig)
    # codex feature flags, over the plugin's defaults (see _codex/policy.py).
    codex_features: dict[str, bool] = Field(default_factory=dict)
    # What one agent's commands may use (see _codex/limits.py).
    agent_limits: AgentLimitsConfig | None = None
    # The account's turns that run at once (None: by how codex is logged in, see
    # _turn/admission.py); a turn codex fails for the account's load is sent again at most
    # max_turn_retries times.
    max_concurrent_turns: int | None = Field(default=None, ge=1, le=1024)
    max_turn_retries: int = Field(default=8, ge=0, le=100)
    # Several codex logins (each its own CODEX_HOME, app-server and admission); empty: one, the
    # environment's CODEX_HOME.
    accounts: tuple[AccountConfig, ...] = ()

    @classmethod
    def parse(cls, data: Any) -> HostConfig:
        """Validate a decoded JSON object (``None`` means all defaults)."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise ConfigError(
                f"config must be a JSON object, not {type(data).__name__}", key="config", value=data
            )
        # JSON has lists, not tuples: accept them where the model keeps tuples.
        data = {k: _tuples(v) for k, v in data.items()}
        if isinstance(data.get("accounts"), tuple):  # each account's lists (agents)
            data["accounts"] = tuple(_tuples(a) for a in data["accounts"])
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            raise _config_error(exc, data) from None
        config._check_values()
        return config

    def _check_values(self) -> None:
        for key in type(self).model_fields:
            value = getattr(self, key)
            if key == "model_args":
                value = _model_args_wire(value)
            elif isinstance(value, BaseModel):
                value = value.model_dump(by_alias=True)
            text = lone_surrogate(value)
            if text is not None:
                raise ConfigError(
                    f"config key {key!r} has an invalid value: {text}", key=key, value=None
                )
        for arg in self.extra_args:
            if "\0" in arg:
                raise ConfigError(
                    f"config key 'extra_args' has an invalid value {arg!r}: NUL bytes cannot be"
                    " passed to a program",
                    key="extra_args",
                    value=list(self.extra_args),
                )
        models = self.supported_models
        for model in models:
            if not model.strip() or models.count(model) > 1:
                raise ConfigError(
                    f"config key 'supported_models' has an invalid value {json.dumps(list(models))}:"
                    f" model ids must be non-empty and unique ({model!r})",
                    key="supported_models",
                    value=list(models),
                )
        for path in self.sandbox_readable:
            if not os.path.isabs(path) or "\0" in path or os.path.normpath(path) == "/":
                raise ConfigError(
                    f"config key 'sandbox_readable' has an invalid value {path!r}: each entry must"
                    " be an absolute path other than /",
                    key="sandbox_readable",
                    value=list(self.sandbox_readable),
                )
            if not os.path.exists(path):
                raise ConfigError(
                    f"config key 'sandbox_readable' has an invalid value {path!r}: no such file or"
                    " folder",
                    key="sandbox_readable",
                    value=list(self.sandbox_readable),
                )
        self.agent_env.check()
        for name in self.codex_features:
            if not _FEATURE.fullmatch(name):
                raise ConfigError(
                    f"config key 'codex_features' has an invalid feature name {name!r} (codex's"
                    " features are named like multi_agent: see `codex features list`)",
                    key="codex_features",
                    value=dict(self.codex_features),
                )
        self._check_accounts()
        for advertised, choice in self.model_args.items():
            effort = choice.effort if isinstance(choice, ModelChoice) else None
            if effort is not None and not EFFORT.fullmatch(effort):
                raise ConfigError(
                    f"config key 'model_args.{advertised}.effort' has an invalid value {effort!r}: a"
                    " reasoning effort is a lower-case word such as low, medium or high",
                    key="model_args",
                    value=_model_args_wire(self.model_args),
                )
            if advertised not in models:
                raise ConfigError(
                    f"config key 'model_args' names model {advertised!r}, which is not in"
                    f" supported_models {json.dumps(list(models))}",
                    key="model_args",
                    value=_model_args_wire(self.model_args),
                )

    def _check_accounts(self) -> None:
        def refuse(why: str) -> ConfigError:
            value = [a.model_dump(mode="json") for a in self.accounts]
            return ConfigError(
                f"config key 'accounts' has an invalid value: {why}", key="accounts", value=value
            )

        names: set[str] = set()
        homes: set[str] = set()
        pinned: set[str] = set()
        for account in self.accounts:
            if not _ACCOUNT_NAME.fullmatch(account.name):
                raise refuse(
                    f"account name {account.name!r} must be 1-64 letters, digits, '.', '_' or"
                    " '-', starting with a letter or digit"
                )
            if account.name in names:
                raise refuse(f"account name {account.name!r} is used twice")
            names.add(account.name)
            home = os.path.normpath(account.codex_home) if account.codex_home else ""
            if not os.path.isabs(account.codex_home) or "\0" in account.codex_home:
                raise refuse(
                    f"account {account.name!r}: codex_home {account.codex_home!r} must be an"
                    " absolute path"
                )
            if home in homes:
                raise refuse(f"account {account.name!r}: codex_home {home!r} is another account's")
            homes.add(home)
            for agent in account.agents:
                if not agent or agent in pinned:
                    raise refuse(
                        f"account {account.name!r}: agent {agent!r} is empty or pinned to two"
                        " accounts"
                    )
                pinned.add(agent)

    def account_home(self, name: str | None) -> str | None:
        """The CODEX_HOME of account ``name`` (None: the first), or None when the config has no
        ``accounts`` (the environment's CODEX_HOME is the one); ConfigError for an unknown name."""
        if not self.accounts:
            if name is None:
                return None
            raise ConfigError(
                f"account {name!r} is not in the config (it has no 'accounts')", key="accounts"
            )
        for account in self.accounts:
            if name is None or account.name == name:
                return account.codex_home
        known = ", ".join(a.name for a in self.accounts)
        raise ConfigError(f"account {name!r} is not in the config ({known})", key="accounts")

    def model_arg(self, model: str) -> str | None:
        """The ``--model`` value for an advertised model id (``None``: codex's default)."""
        arg = self.model_args.get(model)
        return arg.model if isinstance(arg, ModelChoice) else arg

    def model_effort(self, model: str) -> str | None:
        """The reasoning effort the operator gave an advertised model (``None``: its default)."""
        arg = self.model_args.get(model)
        return arg.effort if isinstance(arg, ModelChoice) else None


def _model_args_wire(args: dict[str, str | ModelChoice]) -> dict[str, Any]:
    return {
        k: v.model_dump(exclude_none=True) if isinstance(v, ModelChoice) else v
        for k, v in args.items()
    }


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, dict):  # a section's lists (agent_env.pass)
        return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
    return value


def _config_error(exc: ValidationError, data: dict[str, Any]) -> ConfigError:
    err = exc.errors()[0]
    loc = [str(part) for part in err.get("loc", ())]
    key = loc[0] if loc else "config"
    if err.get("type") == "extra_forbidden" and loc[:1] == ["agent_env"] and len(loc) > 1:
        return ConfigError(
            f"config key 'agent_env.{loc[1]}' is not known (agent_env has: pass, set)",
            key=key,
            value=data.get(key),
        )
    if key == "model_args" and len(loc) > 2 and isinstance(data.get(key), dict):
        return _model_args_error(exc, loc[1], data[key])
    if err.get("type") == "extra_forbidden" and key == "accounts" and len(loc) > 1:
        known = ", ".join(AccountConfig.model_fields)
        return ConfigError(
            f"config key {'.'.join(loc)!r} is not known (an account's keys: {known})",
            key=key,
            value=data.get(key),
        )
    where = ".".join(loc) or "config"
    if err.get("type") == "extra_forbidden":
        fields = AgentLimitsConfig.model_fields if len(loc) > 1 else HostConfig.model_fields
        return ConfigError(
            f"config key {where!r} is not known (known keys: {', '.join(fields)})",
            key=key,
            value=data.get(key),
        )
    nested = key == "agent_limits" and len(loc) > 1  # the entry itself, not the whole object
    value = data.get(key) if key in data and not nested else err.get("input")
    msg = str(err.get("msg", "invalid")).replace("tuple", "list")
    if isinstance(value, tuple):
        value = list(value)
    return ConfigError(
        f"config key {where!r} has an invalid value {json.dumps(value, default=str)}: {msg}",
        key=key,
        value=value,
    )


def _model_args_error(exc: ValidationError, name: str, args: dict[str, Any]) -> ConfigError:
    """A ``model_args`` entry that is neither a model name nor a ``{"model", "effort"}`` table:
    what is wrong with it, in the form it was given."""
    value = args.get(name)
    why = 'give codex\'s model name, or an object with "model" and/or "effort"'
    if isinstance(value, dict):
        for err in exc.errors():
            loc = [str(part) for part in err.get("loc", ())]
            if "ModelChoice" in loc and loc[-1] != "ModelChoice":
                why = f"{loc[-1]}: {err.get('msg', 'invalid')}"
                break
    return ConfigError(
        f"config key 'model_args.{name}' has an invalid value {json.dumps(value, default=str)}:"
        f" {why}",
        key="model_args",
        value=args,
    )


# A host's section for this plugin in its config.json (examples/plexum-config.json): the command
# that starts the plugin and the config it is initialized with.
_HOST_SECTION_KEYS = frozenset({"command", "config"})


def config_object(data: Any) -> Any:
    """The HostConfig object of what a config file holds: either that object itself, or a host's
    whole section for the plugin (``{"command": [...], "config": {...}}``), whose ``config`` it
    is."""
    if (
        isinstance(data, dict)
        and isinstance(data.get("config"), dict)
        and set(data) <= _HOST_SECTION_KEYS
    ):
        return data["config"]
    return data


def read_config_file(path: Path) -> Any:
    """The HostConfig object (not yet validated) of a JSON file: see :func:`config_object`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}", key="config") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}", key="config") from None
    return config_object(data)


def load_config_file(path: Path) -> HostConfig:
    """Read a JSON file holding one object of HostConfig keys, or a host's section for the plugin
    (``command`` and ``config``)."""
    return HostConfig.parse(read_config_file(path))
