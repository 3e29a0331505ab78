"""The one place where this package's exceptions become JSON-RPC errors.

======================================  ======  ==========================================
exception                               code    ``error.data``
======================================  ======  ==========================================
InvalidRequestError                     -32602  ``{"field": <the field>}``
ConfigError                             -32602  ``{"field": "config.<key>"}``
CodexNotFoundError                      -32602  ``{"field": "config.binary"}`` (initialize)
AgentBusyError                          -32001  ``{"agent_id": …, "holder": …}``
ThreadBusyError                         -32001  ``{"thread_id": …}``
SessionFormatError                      -32603  ``{"path": …}``
BridgeError, CodexHomeError             -32603  ``{"path": …}``
CodexProcessError (and AppServerError)  -32603  ``{"exit_code": …, "stderr_tail": …}``
anything else                           -32603  (logged with its traceback)
======================================  ======  ==========================================
"""

from __future__ import annotations

import logging
from typing import Any

from .._jsonrpc import AGENT_BUSY, INTERNAL_ERROR, INVALID_PARAMS, JsonRpcError
from ..errors import (
    AgentBusyError,
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

__all__ = ["to_jsonrpc"]

log = logging.getLogger(__name__)


def to_jsonrpc(exc: BaseException) -> JsonRpcError:
    if isinstance(exc, JsonRpcError):
        return exc
    data: dict[str, Any] | None = None
    code = INTERNAL_ERROR
    if isinstance(exc, InvalidRequestError):
        code, data = INVALID_PARAMS, {"field": exc.field}
        return JsonRpcError(code, f"invalid params: {exc.field}: {exc.message}", data)
    if isinstance(exc, ConfigError):
        code, data = INVALID_PARAMS, {"field": f"config.{exc.key}"}
    elif isinstance(exc, CodexNotFoundError):
        code, data = INVALID_PARAMS, {"field": "config.binary", "tried": exc.tried}
    elif isinstance(exc, AgentBusyError):
        code, data = AGENT_BUSY, {"agent_id": exc.agent_id, "holder": exc.holder}
    elif isinstance(exc, ThreadBusyError):
        code, data = AGENT_BUSY, {"thread_id": exc.thread_id}
    elif isinstance(exc, (SessionFormatError, BridgeError, CodexHomeError)):
        data = {"path": exc.path}
    elif isinstance(exc, CodexProcessError):
        data = {"exit_code": exc.exit_code, "stderr_tail": exc.stderr_tail}
    if isinstance(exc, ProviderError):
        return JsonRpcError(code, exc.message, data)
    log.error("internal error", exc_info=exc)
    return JsonRpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}")
