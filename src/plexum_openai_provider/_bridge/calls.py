"""What the bridge's MCP server serves on a connection: the tools, and how a call reaches the host."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..requests import ToolOutput, ToolSpec

__all__ = ["CallTool", "ToolSession"]

# (tool name, arguments) → the host's answer.
CallTool = Callable[[str, dict[str, Any]], Awaitable[ToolOutput]]


@dataclass(frozen=True)
class ToolSession:
    """The tools listed on one MCP connection, and the function its calls go to."""

    tools: Sequence[ToolSpec]
    call_tool: CallTool
