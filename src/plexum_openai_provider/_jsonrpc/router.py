"""Method → handler routing for a :class:`~.connection.Connection`.

A route has a parser that turns raw ``params`` into the handler's typed argument (raising
:class:`JsonRpcError` -32602 itself when they are wrong) and a handler; what a handler raises that
is not already a :class:`JsonRpcError` goes through the router's one ``map_error`` function, so a
server has a single place where its exceptions become JSON-RPC errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import INVALID_REQUEST, METHOD_NOT_FOUND, JsonRpcError

__all__ = ["Router"]

P = TypeVar("P")


@dataclass(frozen=True)
class _Route(Generic[P]):
    parse: Callable[[Any], P]
    handler: Callable[[P], Awaitable[Any]]


def _identity(params: Any) -> Any:
    return params


class Router:
    def __init__(self, map_error: Callable[[Exception], JsonRpcError] | None = None) -> None:
        self._routes: dict[str, _Route[Any]] = {}
        self._map_error = map_error

    def add(
        self,
        method: str,
        handler: Callable[[P], Awaitable[Any]],
        parse: Callable[[Any], P] = _identity,
    ) -> None:
        self._routes[method] = _Route(parse, handler)

    async def __call__(self, method: str, params: Any, is_notification: bool) -> Any:
        """The :data:`~.connection.Handler` of a connection. A route is for requests: sent as a
        notification (no id, so no answer could ever say what happened) it is not run."""
        route = self._routes.get(method)
        if route is None:
            raise JsonRpcError(METHOD_NOT_FOUND, f"method not found: {method}")
        if is_notification:
            raise JsonRpcError(INVALID_REQUEST, f"{method} needs an id: it was not run")
        try:
            return await route.handler(route.parse(params))
        except JsonRpcError:
            raise
        except Exception as exc:
            if self._map_error is None:
                raise
            raise self._map_error(exc) from exc
