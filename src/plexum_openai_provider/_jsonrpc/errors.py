"""JSON-RPC error codes and the one exception that carries them."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AGENT_BUSY",
    "CALL_OFF",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "NOT_INITIALIZED",
    "PARSE_ERROR",
    "REQUEST_CANCELLED",
    "ConnectionClosed",
    "JsonRpcError",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_INITIALIZED = -32002
AGENT_BUSY = -32001
# JSON-RPC has no way to call off a request; LSP's is the model: a notification naming its id,
# and the callee's answer (if it still gives one) is this error.
CALL_OFF = "$/cancelRequest"
REQUEST_CANCELLED = -32800


class JsonRpcError(Exception):
    """Raised by a handler to answer with an error; received by a caller as the peer's error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code
        self.message = message
        self.data = data

    def to_wire(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class ConnectionClosed(Exception):
    """The peer went away before answering."""
