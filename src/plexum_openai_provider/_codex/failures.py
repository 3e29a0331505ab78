"""What a codex failure means for the host: a code it can act on, whether the same turn sent again
can succeed, and when.

From the app-server's ``codexErrorInfo`` where codex gives one, else from the message, as codex
0.163-0.171 write them (recorded in ``tests/data/failures-0.163.json``, the same on 0.171; on exec
the ``turn.failed`` message is the same text)::

    401            "unexpected status 401 Unauthorized: …"        {"httpConnectionFailed": {"httpStatusCode": 401}}
    429 (rate)     "exceeded retry limit, last status: 429 Too Many Requests"
                                                         {"responseTooManyFailedAttempts": {"httpStatusCode": 429}}
    429 (usage)    "You’ve hit your usage limit. … try again later."                  "usageLimitExceeded"
                   "… or try again at 9:05 AM." (the model said when the limit resets: codex
                   writes the local time, with the date when it is not today)
    503 overloaded "Selected model is at capacity. Please try a different model."     "serverOverloaded"
    context        "Codex ran out of room in the model's context window. …"          "contextWindowExceeded"
    anything else  e.g. "stream disconnected before completion: …"                   "other"
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

__all__ = ["Failure", "classify", "is_reconnect"]

LOGIN_ADVICE = (
    "log codex in as the daemon's user, with its CODEX_HOME: plexum-openai-provider-plugin login"
    " (--device-auth on a machine with no browser)"
)
CONTEXT_ADVICE = (
    "consume heavy tool outputs (session/consume) so that a resumed thread carries less, or start"
    " a new thread"
)
_TRY_AGAIN_IN = re.compile(
    r"try again in (?:(\d+)\s*h(?:ours?)?)?\s*(?:(\d+)\s*m(?:in(?:utes?)?)?)?\s*(?:(\d+(?:\.\d+)?)\s*s(?:ec(?:onds?)?)?)?",
    re.I,
)
# codex's own: "[Tt]ry again at 9:05 AM" (today) or "… at Sep 29th, 2026 12:55 AM".
_TRY_AGAIN_AT = re.compile(
    r"(?i:try again at) (?:([A-Z][a-z]{2}) (\d{1,2})(?:st|nd|rd|th), (\d{4}) )?(\d{1,2}):(\d{2}) ([AP]M)",
)


# What codex says while it cannot reach the model and tries again (0.163-0.171, recorded in
# tests/data/reconnect-0.163.jsonl): an error that did not end the turn, "Reconnecting... 2/5" (a
# stream that failed or went quiet for stream_idle_timeout_ms, retried stream_max_retries times);
# "Reconnecting... waiting for network (Connection failed: …)" (a connection that failed: with
# codex's feature unbounded_connection_retries, on by default, it is retried without end, 5 s to
# 60 s apart); and the warning "Falling back from WebSockets to HTTPS transport. …" between the two
# transports' attempts.
_RECONNECT_PREFIXES = ("Reconnecting...", "Falling back from WebSockets to HTTPS transport")


def is_reconnect(message: str) -> bool:
    """Is this codex error or warning one of its attempts to reach the model again?"""
    return message.startswith(_RECONNECT_PREFIXES)


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


def _retry_after(message: str, now: float | None = None) -> float | None:
    """Seconds until codex says to try again, if it says; at least 0."""
    match = _TRY_AGAIN_IN.search(message)
    if match is not None and any(match.groups()):
        hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
        return hours * 3600 + minutes * 60 + seconds
    match = _TRY_AGAIN_AT.search(message)
    if match is None:
        return None
    month, day, year, hour, minute, half = match.groups()
    clock = datetime.fromtimestamp(time.time() if now is None else now)  # codex's: local time
    hour_24 = int(hour) % 12 + (12 if half == "PM" else 0)
    try:
        if month is not None:
            date = datetime.strptime(f"{month} {day} {year}", "%b %d %Y")
        else:
            date = clock
        at = date.replace(hour=hour_24, minute=int(minute), second=0, microsecond=0)
    except ValueError:
        return None
    if month is None and at < clock - timedelta(minutes=1):
        at += timedelta(days=1)  # a time of day before now: tomorrow's
    return max((at - clock).total_seconds(), 0.0)


def classify(message: str, info: Any = None, now: float | None = None) -> Failure:
    """The failure of a turn codex reported as failed (``turn.failed``, ``turn/completed`` with
    status failed)."""
    kind = info if isinstance(info, str) else None
    status = _status(info, message)
    lowered = message.lower()
    after = _retry_after(message, now)
    if kind == "unauthorized" or status in (401, 403) or "not logged in" in lowered:
        return Failure("unauthorized", f"{message} — {LOGIN_ADVICE}", False)
    if kind == "usageLimitExceeded" or "usage limit" in lowered:
        # Retryable once the limit resets, if codex says when; else not (an operator's matter).
        return Failure("usage_limit", message, after is not None, after)
    if kind == "contextWindowExceeded" or "context window" in lowered:
        return Failure("context_window_exceeded", f"{message} — {CONTEXT_ADVICE}", False)
    if kind == "rateLimitExceeded" or status == 429:
        return Failure("rate_limited", message, True, after)
    if kind == "serverOverloaded" or status in (502, 503, 529) or "at capacity" in lowered:
        return Failure("overloaded", message, True, after)
    return Failure("codex_failed", message, True, after)
