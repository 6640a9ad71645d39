"""A webhook receiver for the alert tests: a real HTTP server on a free 127.0.0.1 port that
checks each alert's signature and keeps what it received (and can answer errors first)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        self.fail_next = 0
        """Answer this many requests with HTTP 503 before accepting."""
        self.url = ""

    def ids(self) -> list[str]:
        return [r["id"] for r in self.received]

    def states(self) -> list[tuple[str, str]]:
        """(objective, state) of each distinct alert id, in the order first received."""
        seen: dict[str, tuple[str, str]] = {}
        for r in self.received:
            seen.setdefault(r["id"], (r["objective"], r["state"]))
        return list(seen.values())


@contextmanager
def receiver(secret: str = "s3cret-webhook") -> Iterator[Receiver]:
    rec = Receiver(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if rec.fail_next > 0:
                rec.fail_next -= 1
                self.send_response(503)
                self.end_headers()
                return
            stamp = self.headers["X-Synchub-Timestamp"]
            mac = hmac.new(rec.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
            ok = hmac.compare_digest(
                "sha256=" + mac.hexdigest(), self.headers["X-Synchub-Signature"]
            )
            alert = json.loads(body)
            assert alert["id"] == self.headers["X-Synchub-Alert-Id"]
            rec.received.append({**alert, "signed": ok})
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
