"""The exception tree: every error this package raises on purpose.

::

    ProviderError                 base                                             (.code)
    ├── ConfigError               a HostConfig key has a bad value                 (.key, .value)
    ├── CodexNotFoundError        no codex binary that runs                        (.tried)
    ├── InvalidRequestError       a turn or consume request is invalid             (.field)
    ├── AgentBusyError            the agent already has a running turn             (.agent_id, .holder)
    ├── ThreadBusyError           another process writes the agent's codex thread  (.thread_id)
    ├── SessionFormatError        a rollout file this version does not understand  (.path)
    ├── BridgeError               the host-tool bridge cannot be set up            (.path)
    ├── CodexHomeError            CODEX_HOME cannot be used                        (.path)
    └── CodexProcessError         a codex process failed or misbehaved     (.exit_code, .stderr_tail)
        └── AppServerError        the app-server failed its handshake, died or stopped answering

``code`` is the error code of the protocol (``turn.error.code``) each one stands for. The plugin
server turns any of them into a JSON-RPC error with one function
(:func:`plexum_openai_provider.plugin.errors.to_jsonrpc`), the commands into a message.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgentBusyError",
    "AppServerError",
    "BridgeError",
    "CodexHomeError",
    "CodexNotFoundError",
    "CodexProcessError",
    "ConfigError",
    "InvalidRequestError",
    "ProviderError",
    "SessionFormatError",
    "ThreadBusyError",
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
    """The agent has a running turn here, or another plugin process serves it now (``holder``)."""

    code = "agent_busy"

    def __init__(self, agent_id: str, *, holder: str | None = None) -> None:
        where = f" in {holder}" if holder else ""
        super().__init__(f"agent {agent_id!r} already has a running turn{where}")
        self.agent_id = agent_id
        self.holder = holder


class ThreadBusyError(ProviderError):
    """Another process (a codex) holds codex's writer lock of the thread."""

    code = "agent_busy"

    def __init__(self, message: str, *, thread_id: str) -> None:
        super().__init__(message)
        self.thread_id = thread_id


class SessionFormatError(ProviderError):
    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class BridgeError(ProviderError):
    """The bridge's socket folder or socket cannot be used (too long, not ours, a link)."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class CodexHomeError(ProviderError):
    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class CodexProcessError(ProviderError):
    """A codex process ended or answered in a way that ends what it was doing."""

    code = "codex_exited"

    def __init__(
        self, message: str, *, exit_code: int | None = None, stderr_tail: str = ""
    ) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr_tail = stderr_tail


class AppServerError(CodexProcessError):
    """The shared ``codex app-server`` failed its handshake, died, or stopped answering."""
