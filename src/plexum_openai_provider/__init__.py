"""plexum-openai-provider: the OpenAI Codex CLI as a Plexum provider.

The public, in-process API: a :class:`CodexProvider` runs turns (:class:`TurnRequest` for an
:class:`AgentContext`) as ``codex exec`` runs and streams canonical events.
"""

from __future__ import annotations

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
from .requests import AgentContext, ToolSpec, TurnError, TurnRequest, TurnResult
from .turn import Turn

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
    "ToolResult",
    "ToolSpec",
    "Turn",
    "TurnError",
    "TurnRequest",
    "TurnResult",
    "Usage",
    "__version__",
]
