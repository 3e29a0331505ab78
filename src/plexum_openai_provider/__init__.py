"""plexum-openai-provider: the OpenAI Codex CLI as a Plexum provider.

The public, in-process API: a :class:`CodexProvider` runs turns (:class:`TurnRequest` for an
:class:`AgentContext`) as ``codex exec`` runs and streams canonical events.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import HostConfig
    from .errors import (
        AgentBusyError,
        CodexNotFoundError,
        ConfigError,
        InvalidRequestError,
        ProviderError,
        SessionFormatError,
    )
    from .events import ErrorEvent, Event, Notice, TextDelta, ToolCall, ToolResult, Usage
    from .provider import CodexProvider
    from .requests import (
        AgentContext,
        ToolCallRequest,
        ToolOutput,
        ToolSpec,
        TurnError,
        TurnRequest,
        TurnResult,
    )
    from .turn import Turn

# Imported on first use: ``mcp-host`` (started by codex on every tool turn) imports this package
# and must not pay for pydantic and the rest.
_LAZY = {
    "HostConfig": ".config",
    "AgentBusyError": ".errors",
    "CodexNotFoundError": ".errors",
    "ConfigError": ".errors",
    "InvalidRequestError": ".errors",
    "ProviderError": ".errors",
    "SessionFormatError": ".errors",
    "ErrorEvent": ".events",
    "Event": ".events",
    "Notice": ".events",
    "TextDelta": ".events",
    "ToolCall": ".events",
    "ToolResult": ".events",
    "Usage": ".events",
    "CodexProvider": ".provider",
    "AgentContext": ".requests",
    "ToolOutput": ".requests",
    "ToolCallRequest": ".requests",
    "ToolSpec": ".requests",
    "TurnError": ".requests",
    "TurnRequest": ".requests",
    "TurnResult": ".requests",
    "Turn": ".turn",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "AgentBusyError",
    "AgentContext",
    "CodexNotFoundError",
    "CodexProvider",
    "ConfigError",
    "ErrorEvent",
    "Event",
    "HostConfig",
    "InvalidRequestError",
    "Notice",
    "ProviderError",
    "SessionFormatError",
    "TextDelta",
    "ToolCall",
    "ToolCallRequest",
    "ToolOutput",
    "ToolResult",
    "ToolSpec",
    "Turn",
    "TurnError",
    "TurnRequest",
    "TurnResult",
    "Usage",
    "__version__",
]
