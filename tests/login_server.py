"""A stand-in for OpenAI's login server on 127.0.0.1, for ``codex login --device-auth`` (given to
codex with its ``--experimental_issuer`` option). The shapes are those codex's
``login/src/device_code_auth.rs`` asks for: a user code, a token poll that is pending once, then
the code exchange that gives an id token (a JWT whose claims codex reads, unsigned here)."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USER_CODE = "PLXM-4242"
EMAIL = "operator@example.com"


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.c2ln"


class LoginServer:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, body) as received
        self._polls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                outer.requests.append((self.path, body))
                status, answer = outer.answer(self.path)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        if path == "/api/accounts/deviceauth/usercode":
            # Poll again at once (codex waits `interval` s between polls; the pending one is kept).
            return 200, {"device_auth_id": "dev-1", "user_code": USER_CODE, "interval": "0"}
        if path == "/api/accounts/deviceauth/token":
            self._polls += 1
            if self._polls == 1:  # the operator has not typed the code in yet
                return 403, {"error": "authorization_pending"}
            return 200, {
                "authorization_code": "code-1",
                "code_challenge": "challenge-1",
                "code_verifier": "verifier-1",
            }
        if path == "/oauth/token":
            auth = {
                "chatgpt_plan_type": "pro",
                "chatgpt_account_id": "account-1",
                "chatgpt_user_id": "user-1",
            }
            claims = {
                "email": EMAIL,
                "exp": int(time.time()) + 3600,
                "https://api.openai.com/auth": auth,
            }
            return 200, {
                "id_token": _jwt(claims),
                "access_token": _jwt({**claims, "scp": ["openid"]}),
                "refresh_token": "refresh-1",
            }
        return 404, {"error": "not found"}

    def __enter__(self) -> LoginServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
