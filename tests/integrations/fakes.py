"""Fake third-party receivers on loopback. Each speaks its service's protocol and checks each
request the way the real receiver would (a Standard Webhooks signature, a PostHog project key, a
Segment write key); `fail_next` makes the next N requests answer 503."""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeReceiver:
    """Accepted requests in `received`, refused ones (bad signature or key) in `refused`."""

    protocol: str
    secret: str = ""
    fail_next: int = 0
    received: list[Received] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)  # every attempt, failed ones too
    refused: list[tuple[Received, str]] = field(default_factory=list)
    attempts: int = 0
    url: str = ""

    def check(self, request: Received) -> str | None:
        """Why the real service would refuse this request, or None."""
        if self.protocol == "webhook":
            try:
                Webhook(self.secret).verify(request.body, request.headers)
            except WebhookVerificationError as error:
                return f"signature: {error}"
            return None
        if self.protocol == "posthog":
            if request.path != "/i/v0/e/":
                return f"no such endpoint {request.path}"
            return None if request.json.get("api_key") == self.secret else "invalid project api key"
        if self.protocol == "segment":
            if request.path != "/v1/track":
                return f"no such endpoint {request.path}"
            auth = request.headers.get("authorization", "")
            expected = "Basic " + base64.b64encode(f"{self.secret}:".encode()).decode()
            return None if auth == expected else "invalid write key"
        if self.protocol == "slack":
            return None if isinstance(request.json.get("text"), str) else "invalid_payload"
        return "unknown protocol"


def serve(receiver: FakeReceiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            receiver.attempts += 1
            receiver.requests.append(request)
            if receiver.fail_next > 0:
                receiver.fail_next -= 1
                return self._answer(503, {"error": "temporarily unavailable"})
            problem = receiver.check(request)
            if problem:
                receiver.refused.append((request, problem))
                return self._answer(401, {"error": problem})
            receiver.received.append(request)
            if receiver.protocol == "slack":
                return self._answer(200, "ok")
            self._answer(200, {"status": 1} if receiver.protocol == "posthog" else {"success": True})

        def _answer(self, status: int, body: Any) -> None:
            raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    return server
