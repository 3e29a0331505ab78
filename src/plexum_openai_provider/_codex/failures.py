"""What a codex failure means for the host: a code it can act on, whether the same turn sent again
can succeed, and when.

From the app-server's ``codexErrorInfo`` where codex gives one, else from the message, as codex
0.163-0.171 write them (recorded in ``tests/data/failures-0.163.json``, the same on 0.171; on exec
the ``turn.failed`` message is the same text)::

    401            "unexpected status 401 Unauthorized: …"        {"httpConnectionFailed": {"httpStatusCode": 401}}
    429 (rate)     "exceeded retry limit, last status: 429 Too Many Requests"
                                                         {"responseTooManyFailedAttempts": {"httpStatusCode": 429}}
    429 (usage)    "You’ve hit your usage limit. … try again later."                  "usageLimitExceeded"
    503 overloaded "Selected model is at capacity. Please try a different model."     "serverOverloaded"
    context        "Codex ran out of room in the model's context window. …"          "contextWindowExceeded"
    anything else  e.g. "stream disconnected before completion: …"                   "other"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Failure", "classify"]

LOGIN_ADVICE = (
    "log codex in as the daemon's user, with its CODEX_HOME: plexum-openai-provider-plugin login"
    " (--device-auth on a machine with no browser)"
)
CONTEXT_ADVICE = (
    "consume heavy tool outputs (session/consume) so that a resumed thread carries less, or start"
    " a new thread"
)
_TRY_AGAIN = re.compile(
    r"try again in (?:(\d+)\s*h(?:ours?)?)?\s*(?:(\d+)\s*m(?:in(?:utes?)?)?)?\s*(?:(\d+(?:\.\d+)?)\s*s(?:ec(?:onds?)?)?)?",
    re.I,
)


@dataclass(frozen=True)
class Failure:
    code: str
    message: str
    retryable: bool  # can the same turn, sent again, succeed?
    retry_after_s: float | None = None  # … not before this (when codex says)


def _status(info: Any, message: str) -> int | None:
    if isinstance(info, dict):
        for detail in info.values():
            if isinstance(detail, dict) and isinstance(detail.get("httpStatusCode"), int):
                return int(detail["httpStatusCode"])
    match = re.search(r"\b(?:unexpected status|last status:)\s*(\d{3})\b", message)
    return int(match.group(1)) if match else None


def _retry_after(message: str) -> float | None:
    match = _TRY_AGAIN.search(message)
    if match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def classify(message: str, info: Any = None) -> Failure:
    """The failure of a turn codex reported as failed (``turn.failed``, ``turn/completed`` with
    status failed)."""
    kind = info if isinstance(info, str) else None
    status = _status(info, message)
    lowered = message.lower()
    after = _retry_after(message)
    if kind == "unauthorized" or status in (401, 403) or "not logged in" in lowered:
        return Failure("unauthorized", f"{message} — {LOGIN_ADVICE}", False)
    if kind == "usageLimitExceeded" or "usage limit" in lowered:
        return Failure("usage_limit", message, False, after)
    if kind == "contextWindowExceeded" or "context window" in lowered:
        return Failure("context_window_exceeded", f"{message} — {CONTEXT_ADVICE}", False)
    if kind == "rateLimitExceeded" or status == 429:
        return Failure("rate_limited", message, True, after)
    if kind == "serverOverloaded" or status in (502, 503, 529) or "at capacity" in lowered:
        return Failure("overloaded", message, True, after)
    return Failure("codex_failed", message, True, after)
