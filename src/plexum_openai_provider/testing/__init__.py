"""Test support shipped with the package: a scripted model server for offline codex turns."""

from .model_server import (
    CustomToolCall,
    Failed,
    FunctionCall,
    Hang,
    HttpError,
    Message,
    Reply,
    ResponsesRequest,
    ScriptedModelServer,
    Usage,
    echo_script,
    scripted_codex_home,
    write_codex_home,
)

__all__ = [
    "CustomToolCall",
    "Failed",
    "FunctionCall",
    "Hang",
    "HttpError",
    "Message",
    "Reply",
    "ResponsesRequest",
    "ScriptedModelServer",
    "Usage",
    "echo_script",
    "scripted_codex_home",
    "write_codex_home",
]
