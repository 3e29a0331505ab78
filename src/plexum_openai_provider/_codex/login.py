"""Is codex logged in, and how: what ``codex login status`` says, without a secret.

codex 0.163-0.171 print ``Logged in using ChatGPT``, ``Logged in using an API key - sk-…***…``
(a part of the key: never passed on) or ``Not logged in`` (exit 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .guard import run_briefly

__all__ = ["LoginState", "login_state"]

_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class LoginState:
    logged_in: bool | None  # None: codex did not say
    method: Literal["chatgpt", "api_key", "other"] | None

    def describe(self) -> dict[str, object]:
        return {"logged_in": self.logged_in, "method": self.method}


def parse_status(returncode: int, text: str) -> LoginState:
    if returncode != 0 or "Not logged in" in text:
        return LoginState(False, None)
    if "ChatGPT" in text:
        return LoginState(True, "chatgpt")
    if "API key" in text:
        return LoginState(True, "api_key")
    return LoginState(True, "other") if "Logged in" in text else LoginState(None, None)


async def login_state(binary: str, env: Mapping[str, str]) -> LoginState:
    try:
        done = await run_briefly([binary, "login", "status"], timeout=_TIMEOUT_S, env=env)
    except OSError:
        return LoginState(None, None)
    if done.returncode is None:
        return LoginState(None, None)
    return parse_status(done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace"))
