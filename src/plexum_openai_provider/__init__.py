"""plexum-openai-provider: the OpenAI Codex CLI as a Plexum provider.

The public, in-process API: a :class:`CodexProvider` runs turns (:class:`TurnRequest` for an
:class:`AgentContext`) on codex and streams canonical events; ``consume`` rewrites what a resumed
codex sends the model. Everything not named in ``__all__`` (the ``_``-prefixed packages) is
internal. The host side of the wire protocol is :mod:`plexum_openai_provider.plugin.client`; test
support (a scripted model server, a fake codex) is :mod:`plexum_openai_provider.testing`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._engine.select import (
        EngineInfo,
    )
    from ._turn.runner import (
        Turn,
    )
    from .config import (
        HostConfig,
    )
    from .conversation import (
        ChatMessage,
        ImagePart,
        TextPart,
    )
    from .errors import (
        AgentBusyError,
        AppServerError,
        BridgeError,
        CodexHomeError,
        CodexNotFoundError,
        CodexProcessError,
        ConfigError,
        InvalidRequestError,
        ProviderError,
        SessionFormatError,
        ThreadBusyError,
    )
    from .events import (
        ACTIVITY_TYPES,
        BASE_TYPES,
        ContextWindow,
        ErrorEvent,
        Event,
        FileChange,
        FileChanged,
        Notice,
        Plan,
        PlanStep,
        ReasoningDelta,
        TextDelta,
        ToolCall,
        ToolOutputDelta,
        ToolResult,
        ToolStarted,
        Usage,
    )
    from .provider import (
        CodexProvider,
    )
    from .requests import (
        AgentContext,
        ConsumeResult,
        Timing,
        ToolCallRequest,
        ToolHandler,
        ToolImage,
        ToolOutput,
        ToolSpec,
        TurnError,
        TurnRequest,
        TurnResult,
    )

# Imported on first use: the console script's ``mcp-host`` (started by codex on tool turns)
# imports this package and must not pay for pydantic and the rest.
_LAZY = {
    "HostConfig": ".config",
    "ChatMessage": ".conversation",
    "ImagePart": ".conversation",
    "TextPart": ".conversation",
    "AgentBusyError": ".errors",
    "AppServerError": ".errors",
    "BridgeError": ".errors",
    "CodexHomeError": ".errors",
    "CodexNotFoundError": ".errors",
    "CodexProcessError": ".errors",
    "ConfigError": ".errors",
    "InvalidRequestError": ".errors",
    "ProviderError": ".errors",
    "SessionFormatError": ".errors",
    "ThreadBusyError": ".errors",
    "ErrorEvent": ".events",
    "Event": ".events",
    "Notice": ".events",
    "TextDelta": ".events",
    "ToolCall": ".events",
    "ToolResult": ".events",
    "Usage": ".events",
    "ACTIVITY_TYPES": ".events",
    "BASE_TYPES": ".events",
    "ContextWindow": ".events",
    "FileChange": ".events",
    "FileChanged": ".events",
    "Plan": ".events",
    "PlanStep": ".events",
    "ReasoningDelta": ".events",
    "ToolOutputDelta": ".events",
    "ToolStarted": ".events",
    "Timing": ".requests",
    "CodexProvider": ".provider",
    "EngineInfo": "._engine.select",
    "AgentContext": ".requests",
    "ConsumeResult": ".requests",
    "ToolCallRequest": ".requests",
    "ToolHandler": ".requests",
    "ToolImage": ".requests",
    "ToolOutput": ".requests",
    "ToolSpec": ".requests",
    "TurnError": ".requests",
    "TurnRequest": ".requests",
    "TurnResult": ".requests",
    "Turn": "._turn.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


from ._version import __version__  # noqa: E402 - after the lazy table, on purpose: light

__all__ = [
    "ACTIVITY_TYPES",
    "BASE_TYPES",
    "AgentBusyError",
    "AgentContext",
    "AppServerError",
    "BridgeError",
    "ChatMessage",
    "CodexHomeError",
    "CodexNotFoundError",
    "CodexProcessError",
    "CodexProvider",
    "ConfigError",
    "ConsumeResult",
    "ContextWindow",
    "EngineInfo",
    "ErrorEvent",
    "Event",
    "FileChange",
    "FileChanged",
    "HostConfig",
    "ImagePart",
    "InvalidRequestError",
    "Notice",
    "Plan",
    "PlanStep",
    "ProviderError",
    "ReasoningDelta",
    "SessionFormatError",
    "TextDelta",
    "TextPart",
    "ThreadBusyError",
    "Timing",
    "ToolCall",
    "ToolCallRequest",
    "ToolHandler",
    "ToolImage",
    "ToolOutput",
    "ToolOutputDelta",
    "ToolResult",
    "ToolSpec",
    "ToolStarted",
    "Turn",
    "TurnError",
    "TurnRequest",
    "TurnResult",
    "Usage",
    "__version__",
]
