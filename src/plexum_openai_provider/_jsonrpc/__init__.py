"""JSON-RPC 2.0 over newline-delimited JSON streams. Knows nothing of codex or of Plexum.

A :class:`Connection` frames, numbers and dispatches; a :class:`Router` maps methods to typed
handlers and exceptions to errors.
"""

from .connection import Connection, Handler
from .errors import (
    AGENT_BUSY,
    CALL_OFF,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_INITIALIZED,
    PARSE_ERROR,
    REQUEST_CANCELLED,
    ConnectionClosed,
    JsonRpcError,
)
from .router import Router

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
    "Connection",
    "ConnectionClosed",
    "Handler",
    "JsonRpcError",
    "Router",
]
