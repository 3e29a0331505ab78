"""Validated params of the protocol's requests. Unknown fields are tolerated (forward
compatibility); a missing or mistyped field is refused with -32602 naming it."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .._io.text import lone_surrogate
from .._jsonrpc import INVALID_PARAMS, JsonRpcError

__all__ = [
    "AgentParams",
    "ConsumeParams",
    "InitializeParams",
    "ToolParams",
    "TurnCancelParams",
    "TurnStartParams",
    "parse_params",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class AgentParams(_Params):
    id: str
    workspace: str


class ToolParams(_Params):
    name: str
    description: str = ""
    input_schema: dict[str, Any] = {"type": "object"}


class InitializeParams(_Params):
    protocol_version: int
    host_info: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    events: list[str] | None = None  # event types wanted beyond today's (checked by the server)


class TurnStartParams(_Params):
    turn_id: str
    agent: AgentParams
    model: str | None = None
    effort: str | None = None  # checked by the provider against the model's efforts
    messages: list[Any]
    tools: list[ToolParams] | None = None
    when_busy: str | None = None  # checked by the provider (refuse, steer, queue)
    traceparent: str | None = None  # W3C trace context (checked by the provider)


class TurnCancelParams(_Params):
    turn_id: str


class ConsumeParams(_Params):
    agent: AgentParams
    block_ids: list[str]
    marker: str | None = None


P = TypeVar("P", bound=_Params)


def field_path(loc: Any) -> str:
    """pydantic's location of a field as the protocol names fields: ``tools[0].name``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _surrogate_field(value: Any, path: str) -> tuple[str, str] | None:
    """(the dotted path, the problem) of the first string in ``value`` that is not text."""
    if isinstance(value, str):
        problem = lone_surrogate(value)
        return (path, problem) if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            found = _surrogate_field(key, where) or _surrogate_field(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _surrogate_field(item, f"{path}[{i}]")
            if found:
                return found
    return None


def parse_params(model: type[P], params: Any) -> P:
    """The typed params, or JsonRpcError -32602 naming the field: a missing or mistyped one, or
    a string that is not valid text (a lone surrogate, which nothing downstream could carry)."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise JsonRpcError(INVALID_PARAMS, "params must be a JSON object", {"field": "params"})
    found = _surrogate_field(params, "")
    # One syntax for a field everywhere (here and in the provider's errors): tools[0].name.
    if found is not None:
        field, problem = found
        raise JsonRpcError(
            INVALID_PARAMS,
            f"invalid params: {field} is not valid text: {problem}",
            {"field": field},
        )
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = field_path(err.get("loc", ())) or "params"
        raise JsonRpcError(
            INVALID_PARAMS, f"invalid params: {field}: {err.get('msg')}", {"field": field}
        ) from None
