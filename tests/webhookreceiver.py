"""A real HTTP server on 127.0.0.1 (http.server in a thread) that receives webhook POSTs and
checks their signatures: shared by the integration and the browser tests."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """An HTTP server that keeps every POST and answers with `statuses` in turn (the last one
    for ever); a POST whose signature does not verify is answered 401. `keep_alive`: HTTP/1.1,
    so a client may send several POSTs over one connection (`connections` counts them). `tls`: a
    server context, for https://."""

    def __init__(
        self,
        secret: str | None,
        *statuses: int,
        keep_alive: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.secret = secret
        self.statuses = list(statuses) or [200]
        self.posts: list[dict[str, Any]] = []
        self.connections: set[tuple[str, int]] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                verified = receiver.verify(body, self.headers.get("X-Farmhand-Signature"))
                receiver.connections.add(self.client_address)
                statuses = receiver.statuses
                status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
                status = status if verified else 401
                receiver.posts.append(
                    {
                        "event": self.headers["X-Farmhand-Event"],
                        "body": json.loads(body),
                        "verified": verified,
                        "answered": status,
                    }
                )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}/hook"

    def verify(self, body: bytes, header: str | None) -> bool:
        if self.secret is None:
            return header is None
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return header is not None and hmac.compare_digest(header, expected)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
