"""A loopback proxy in front of the real server that injects the network's failures on request.

Clients must survive what happens between them and the server: a response lost after the server
stored the event, a 503 from a load balancer, a 429 with a long Retry-After. The proxy forwards
every request to the real server unless a fault is queued; faults apply to the next requests in
order. Tests queue them from Python (`proxy.queue(...)`) or over HTTP (`POST /__faults` with a JSON
list), which the TypeScript tests use; `GET /__log` lists what reached the proxy.

Faults: "forward" (no fault), "lost" (forward, then answer 503 Retry-After: 0 instead of the
server's answer), "hang" (forward, then hold the answer until the client gives up),
"429:<seconds>" and "503:<seconds>" (answer at once with that Retry-After, forwarding nothing).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: list[str] = []
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def queue(self, *faults: str) -> None:
        with self.lock:
            self.faults.extend(faults)

    def _next_fault(self) -> str:
        with self.lock:
            return self.faults.pop(0) if self.faults else "forward"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _control(self, body: bytes) -> bool:
                if self.path == "/__faults" and self.command == "POST":
                    proxy.queue(*json.loads(body))
                    self._answer(204, b"", {})
                    return True
                if self.path == "/__log" and self.command == "GET":
                    with proxy.lock:
                        payload = json.dumps(proxy.log).encode()
                    self._answer(200, payload, {"Content-Type": "application/json"})
                    return True
                return False

            def _proxy(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self._control(body):
                    return
                fault = proxy._next_fault()
                with proxy.lock:
                    proxy.log.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "fault": fault,
                            "headers": dict(self.headers.items()),
                            "body": json.loads(body) if body else None,
                        }
                    )
                kind, _, seconds = fault.partition(":")
                if kind in ("429", "503"):
                    detail = json.dumps({"detail": f"injected {kind}"}).encode()
                    self._answer(
                        int(kind), detail, {"Content-Type": "application/json", "Retry-After": seconds}
                    )
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                upstream = httpx.request(
                    self.command, proxy.upstream + self.path, content=body, headers=headers, timeout=30
                )
                if kind == "lost":
                    detail = json.dumps({"detail": "injected: the answer was lost"}).encode()
                    self._answer(503, detail, {"Content-Type": "application/json", "Retry-After": "0"})
                    return
                if kind == "hang":
                    proxy.released.wait(timeout=30)
                    self.close_connection = True
                    return
                headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
                self._answer(upstream.status_code, upstream.content, headers)

            do_GET = do_POST = do_PUT = do_DELETE = _proxy

        return Handler
