"""A tiny stand-in for the master, for worker tests: a real TCP server on 127.0.0.1 that speaks
NDJSON JSON-RPC (framed and encoded with protocol/), answers `hello` and `task.finished`, sends
orders and records every message the worker sends, in arrival order. Threads, not gevent: the
worker runs as a subprocess.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from typing import Any

from protocol.errors import ErrorCode, RpcError
from protocol.framing import LineDecoder
from protocol.jsonrpc import encode_error, encode_request, encode_result, loads
from tests.support import TEST_MAX_LINE_BYTES, wait_for

ACCEPT_POLL_S = 0.05


class FakeMaster:
    def __init__(self, port: int = 0, heartbeat_s: float = 0.2) -> None:
        # create_server sets SO_REUSEADDR, so a restart can take the same port at once.
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(ACCEPT_POLL_S)
        self.port: int = self.listener.getsockname()[1]
        self.heartbeat_s = heartbeat_s
        self.received: list[dict[str, Any]] = []
        self.stale: set[str] = set()  # attempts whose task.finished gets -32009
        self.read_delay_s = 0.0  # > 0 makes this master a slow reader
        # Attempts whose task.finished is not answered until `release(attempt)` (a slow commit).
        self.held: set[str] = set()
        self._held_answers: dict[str, tuple[socket.socket, Any]] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._replies: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    # -- what the worker sent ------------------------------------------------------------

    def messages(self, method: str, attempt: str | None = None) -> list[dict[str, Any]]:
        """Params of every message with this method (and attempt), in arrival order."""
        with self._lock:
            found = [m.get("params") or {} for m in self.received if m.get("method") == method]
        return [p for p in found if attempt is None or p.get("attempt") == attempt]

    def output(self, attempt: str) -> str:
        return "".join(p["data"] for p in self.messages("task.output", attempt))

    def finished(self, attempt: str) -> dict[str, Any] | None:
        found = self.messages("task.finished", attempt)
        return found[-1] if found else None

    def wait_finished(self, attempt: str, timeout: float = 20.0) -> dict[str, Any]:
        result: dict[str, Any] = wait_for(
            lambda: self.finished(attempt), timeout, what=f"task.finished of {attempt}"
        )
        return result

    def wait_hello(self, count: int = 1, timeout: float = 20.0) -> dict[str, Any]:
        wait_for(lambda: len(self.messages("hello")) >= count, timeout, what="hello")
        return self.messages("hello")[count - 1]

    def order_of(self, attempt: str) -> list[str]:
        """The methods of the messages about `attempt`, in arrival order."""
        with self._lock:
            return [
                m["method"]
                for m in self.received
                if (m.get("params") or {}).get("attempt") == attempt and "method" in m
            ]

    # -- orders to the worker ------------------------------------------------------------

    def request(self, method: str, timeout: float = 10.0, **params: Any) -> dict[str, Any]:
        """Send a request to the (latest) worker connection; the whole reply object."""
        request_id = next(self._ids)
        with self._lock:
            conn = self._conns[-1]
        self._send(conn, encode_request(request_id, method, params))
        reply: dict[str, Any] = wait_for(
            lambda: self._replies.get(request_id), timeout, what=f"reply to {method}"
        )
        return reply

    def run(self, attempt: str, argv: list[str], **params: Any) -> dict[str, Any]:
        """task.run with the defaults filled in; the whole reply object."""
        order: dict[str, Any] = {
            "attempt": attempt,
            "task_id": 1,
            "job_id": 1,
            "argv": argv,
            "env": {},
            "cwd": None,
            "timeout_s": None,
            "progress_regex": None,
            "frame_start": None,
            "frame_end": None,
        }
        order.update(params)
        return self.request("task.run", **order)

    def release(self, attempt: str) -> None:
        """Answer the held task.finished of `attempt` (with {}), and hold no more of it."""
        with self._lock:
            self.held.discard(attempt)
            held = self._held_answers.pop(attempt, None)
        if held is not None:
            self._send(held[0], encode_result(held[1], {}))

    def drop_connections(self) -> None:
        """Cut every connection (the worker reconnects); held answers are never sent."""
        with self._lock:
            conns, self._conns = list(self._conns), []
            self._held_answers.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Go away: stop listening and drop the connections."""
        self._closed = True
        # The accept thread closes the listener: closing it under a pending poll() would keep
        # the port bound until that poll returns, and a restart on the same port would fail.
        self._acceptor.join(timeout=5)
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    # -- serving -------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        with self.listener:
            while not self._closed:
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                conn.settimeout(None)
                with self._lock:
                    self._conns.append(conn)
                threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        decoder = LineDecoder(TEST_MAX_LINE_BYTES)
        while not self._closed:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            decoder.feed(data)
            while (line := decoder.next_line()) is not None:
                self._take(conn, loads(line))
            if self.read_delay_s:
                time.sleep(self.read_delay_s)

    def _take(self, conn: socket.socket, message: dict[str, Any]) -> None:
        method = message.get("method")
        params = message.get("params") or {}
        with self._lock:
            self.received.append(message)
            if method is None:
                self._replies[message["id"]] = message
                return
        if method == "hello":
            result = {
                "client_id": 1,
                "name": params.get("name"),
                "enabled": True,
                "heartbeat_s": self.heartbeat_s,
            }
            self._send(conn, encode_result(message["id"], result))
        elif method == "task.finished":
            with self._lock:
                if params.get("attempt") in self.held:
                    self._held_answers[params["attempt"]] = (conn, message["id"])
                    return
            if params.get("attempt") in self.stale:
                error = RpcError(ErrorCode.CONFLICT, "stale attempt", "stale")
                self._send(conn, encode_error(message["id"], error))
            else:
                self._send(conn, encode_result(message["id"], {}))

    def _send(self, conn: socket.socket, data: bytes) -> None:
        with self._send_lock, contextlib.suppress(OSError):
            conn.sendall(data)
