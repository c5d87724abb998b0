"""Stripe's idempotency rules in front of localstripe, which ignores idempotency keys.

Real Stripe keeps the first answer to a request with an `Idempotency-Key` and replays it to a
repeat with the same parameters, and refuses a repeat with other parameters (400
`idempotency_error`). This proxy does the same over HTTP, forwards everything else to
localstripe, remembers which keys it saw and which requests it really executed, and can lose
replies (the request is executed, the connection drops before the answer) as a network does."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.test import override_settings

FORWARDED_HEADERS = ("authorization", "content-type", "stripe-version", "stripe-account")


@dataclass
class IdempotentStripe:
    upstream: str
    answers: dict = field(default_factory=dict)  # key -> (fingerprint, status, body)
    keys: list = field(default_factory=list)  # (path, key) of every keyed request, in order
    executed: list = field(default_factory=list)  # (path, key) of requests localstripe ran
    lose: dict = field(default_factory=dict)  # path -> replies still to drop
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lose_replies(self, path: str, count: int) -> None:
        """Drop the next `count` answers to POST `path` after executing (or replaying) them."""
        self.lose[path] = count

    def charges(self) -> list[str]:
        """Idempotency keys of the PaymentIntents really created (not replayed)."""
        return [key for path, key in self.executed if path == "/v1/payment_intents"]

    def keys_for(self, path: str) -> list[str]:
        return [key for seen, key in self.keys if seen == path]

    def _forward(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(
            self.upstream + path, data=body if method == "POST" else None, method=method,
            headers={k: v for k, v in headers.items() if k.lower() in FORWARDED_HEADERS},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def handle(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, bytes]:
        key = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), None)
        if method != "POST" or key is None:
            return self._forward(method, path, headers, body)
        fingerprint = hashlib.sha256(f"{path}\n".encode() + body).hexdigest()
        with self.lock:
            self.keys.append((path, key))
            stored = self.answers.get(key)
            if stored is not None:
                if stored[0] != fingerprint:
                    message = (
                        "Keys for idempotent requests can only be used with the same parameters "
                        f"they were first used with. Try using a key other than '{key}' if you "
                        "meant to execute a different request."
                    )
                    error = {"error": {"type": "idempotency_error", "message": message}}
                    return 400, json.dumps(error).encode()
                return stored[1], stored[2]
            status, answer = self._forward(method, path, headers, body)
            self.answers[key] = (fingerprint, status, answer)
            self.executed.append((path, key))
            return status, answer


def _handler(peer: IdempotentStripe):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            status, answer = peer.handle(self.command, self.path, dict(self.headers), body)
            with peer.lock:
                drop = self.command == "POST" and peer.lose.get(path, 0) > 0
                if drop:
                    peer.lose[path] -= 1
            if drop:
                self.close_connection = True  # executed, but the answer never arrives
                return
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args) -> None:
            pass

    return Handler


@contextlib.contextmanager
def idempotent_stripe(upstream: str):
    """Serve the proxy on a free loopback port and point the storefront's Stripe calls at it."""
    peer = IdempotentStripe(upstream=upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(peer))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with override_settings(STRIPE_API_BASE=f"http://127.0.0.1:{server.server_port}"):
            yield peer
    finally:
        server.shutdown()
        server.server_close()
