"""Test support shipped with the package, for this project's tests and for host authors.

* :class:`ScriptedModelServer`: a scripted Responses-API model on 127.0.0.1, so that the real
  codex binary runs real turns offline (every request it sent is recorded);
* :class:`FakeEngine`: a codex seam that replays recorded ``codex exec`` JSONL lines, so that turn
  logic runs in milliseconds without codex at all.
"""

from ..events import Usage
from .fake_codex import FakeEngine, FakeRun, exec_lines
from .model_server import (
    CustomToolCall,
    Failed,
    FunctionCall,
    Hang,
    HttpError,
    Message,
    Reasoning,
    Reply,
    ResponsesRequest,
    ScriptedModelServer,
    Wait,
    echo_script,
    scripted_codex_home,
    write_codex_home,
)

__all__ = [
    "CustomToolCall",
    "Failed",
    "FakeEngine",
    "FakeRun",
    "FunctionCall",
    "Hang",
    "HttpError",
    "Message",
    "Reasoning",
    "Reply",
    "ResponsesRequest",
    "ScriptedModelServer",
    "Usage",
    "Wait",
    "echo_script",
    "exec_lines",
    "scripted_codex_home",
    "write_codex_home",
]
