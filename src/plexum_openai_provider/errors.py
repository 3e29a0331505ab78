"""The exception tree.

::

    ProviderError                 base: every error this package raises on purpose
    ├── ConfigError               a HostConfig key has a bad value      (.key, .value)
    ├── CodexNotFoundError        no codex binary that runs             (.tried)
    ├── InvalidRequestError       a turn or consume request is invalid  (.field)
    ├── AgentBusyError            the agent already has a running turn  (.agent_id)
    └── SessionFormatError        a rollout file this version does not understand (.path)

Each maps to one error code of the protocol (``code``), so the plugin server and the CLI can turn any
of them into a clear message without a table of their own.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentBusyError",
    "CodexNotFoundError",
    "ConfigError",
    "InvalidRequestError",
    "ProviderError",
    "SessionFormatError",
]


class ProviderError(Exception):
    """Base of every error raised on purpose by plexum_openai_provider."""

    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ProviderError):
    code = "invalid_request"

    def __init__(self, message: str, *, key: str, value: Any = None) -> None:
        super().__init__(message)
        self.key = key
        self.value = value


class CodexNotFoundError(ProviderError):
    code = "codex_not_found"

    def __init__(self, message: str, *, tried: list[str] | None = None) -> None:
        super().__init__(message)
        self.tried = tried or []


class InvalidRequestError(ProviderError):
    code = "invalid_request"

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class AgentBusyError(ProviderError):
    code = "agent_busy"

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent {agent_id!r} already has a running turn")
        self.agent_id = agent_id


class SessionFormatError(ProviderError):
    code = "internal"

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path
