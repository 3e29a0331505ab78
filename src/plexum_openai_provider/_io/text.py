"""Text that JSON can carry but UTF-8 cannot: lone surrogates.

``json.loads('"\\\\ud800"')`` gives a string that no file, pipe or program can take as UTF-8. Every
string that comes from outside and goes on to codex, a file or the model is checked here first,
so that it is refused clearly instead of failing later.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["lone_surrogate", "scrub"]


def lone_surrogate(value: Any) -> str | None:
    """A description of the first lone surrogate in ``value`` (a string, or any JSON-like nesting
    of lists, tuples and dicts, keys included), or None when all of it is valid text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"{value[exc.start]!r} at position {exc.start} is a lone surrogate, not text"
        return None
    items: Any = ()
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple)):
        items = value
    for item in items:
        problem = lone_surrogate(item)
        if problem is not None:
            return problem
    return None


# A str holds a surrogate code point only when it is lone: json.loads joins a valid pair into one.
_SURROGATE = re.compile("[\ud800-\udfff]")


def scrub(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (for text that must reach a reader)."""
    return _SURROGATE.sub("\ufffd", text)
