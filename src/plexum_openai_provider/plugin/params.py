"""Validated params of the protocol's requests. Unknown fields are tolerated (forward
compatibility); a missing or mistyped field is refused with -32602 naming it."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..jsonrpc import INVALID_PARAMS, JsonRpcError

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


class TurnStartParams(_Params):
    turn_id: str
    agent: AgentParams
    model: str | None = None
    messages: list[Any]
    tools: list[ToolParams] | None = None


class TurnCancelParams(_Params):
    turn_id: str


class ConsumeParams(_Params):
    agent: AgentParams
    block_ids: list[str]
    marker: str | None = None


P = TypeVar("P", bound=_Params)


def parse_params(model: type[P], params: Any) -> P:
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise JsonRpcError(INVALID_PARAMS, "params must be a JSON object", {"field": "params"})
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(part) for part in err.get("loc", ())) or "params"
        raise JsonRpcError(
            INVALID_PARAMS, f"invalid params: {field}: {err.get('msg')}", {"field": field}
        ) from None
