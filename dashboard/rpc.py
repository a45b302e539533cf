"""The dashboard's JSON-RPC client for the master: one gevent socket, many concurrent calls.

A reader greenlet matches replies to waiting calls by id and hands `event` notifications to a
callback. When the connection drops, waiting calls fail with `MasterUnavailable` and the client
reconnects with exponential backoff, says hello again and re-subscribes to its topics.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import orjson
from gevent import socket
from gevent.event import AsyncResult, Event
from gevent.lock import Semaphore

from farmhand.options import MasterAddress
from farmhand.tls import client_context, connect, describe_tls_error, key_in_clear

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0
CALL_TIMEOUT_S = 10.0
CONNECT_WAIT_S = 2.0  # how long a call waits for a connection that is being re-established
READ_CHUNK_BYTES = 65536

EventCallback = Callable[[str, Any], None]
StateCallback = Callable[[bool], None]


class MasterUnavailable(Exception):
    """The master cannot be reached now (down, restarting, or too slow to answer)."""


class RpcError(Exception):
    """The master answered with a JSON-RPC error."""

    def __init__(self, code: int, message: str, reason: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason

    @classmethod
    def from_error(cls, error: dict[str, Any]) -> RpcError:
        data = error.get("data") or {}
        return cls(
            int(error.get("code", -32603)), str(error.get("message", "")), data.get("reason", "")
        )


class MasterClient:
    """A reconnecting JSON-RPC connection to the master, shared by every request greenlet."""

    def __init__(
        self,
        address: MasterAddress,
        key: str | None = None,
        name: str = "dashboard",
        ca: Path | None = None,
        on_event: EventCallback | None = None,
        on_state: StateCallback | None = None,
        call_timeout_s: float = CALL_TIMEOUT_S,
    ):
        self.address = address
        self.tls = client_context(ca) if address.tls else None
        self.key = key
        self.name = name
        self.on_event = on_event
        self.on_state = on_state
        self.call_timeout_s = call_timeout_s
        self.topics: set[str] = set()
        self.connected = False
        self.last_error = ""
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, AsyncResult] = {}
        self._send_lock = Semaphore()
        self._up = Event()
        self._stopping = False
        self._loop: gevent.Greenlet | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._loop is None:
            self._loop = gevent.spawn(self._run)

    def stop(self) -> None:
        self._stopping = True
        self._close()
        if self._loop is not None:
            self._loop.kill(block=True, timeout=2)
            self._loop = None

    def wait_connected(self, timeout: float) -> bool:
        return bool(self._up.wait(timeout))

    # -- calls -----------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        on_behalf_of: str | None = None,
        **kw: Any,
    ) -> Any:
        """Call a method and return its result; RpcError or MasterUnavailable otherwise.

        `on_behalf_of` names the dashboard user who acts, for the master's audit log.
        """
        if not self._up.wait(CONNECT_WAIT_S):
            raise MasterUnavailable(self.last_error or "the master is not connected")
        return self._request(method, {**(params or {}), **kw}, on_behalf_of)

    def subscribe(self, topics: list[str]) -> None:
        """Add topics; they are (re-)subscribed on every connection."""
        new = [topic for topic in topics if topic not in self.topics]
        self.topics.update(new)
        if new and self.connected:
            self._send_quietly("subscribe", {"topics": new})

    def unsubscribe(self, topics: list[str]) -> None:
        gone = [topic for topic in topics if topic in self.topics]
        self.topics.difference_update(gone)
        if gone and self.connected:
            self._send_quietly("unsubscribe", {"topics": gone})

    def _send_quietly(self, method: str, params: dict[str, Any]) -> None:
        def send() -> None:
            try:
                self._request(method, params)
            except (MasterUnavailable, RpcError) as exc:
                log.warning("%s %s failed: %s", method, params, exc)

        gevent.spawn(send)

    def _request(self, method: str, params: dict[str, Any], on_behalf_of: str | None = None) -> Any:
        sock = self._sock
        if sock is None:
            raise MasterUnavailable(self.last_error or "the master is not connected")
        request_id = next(self._ids)
        waiter: AsyncResult = AsyncResult()
        self._pending[request_id] = waiter
        message = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        if on_behalf_of is not None:
            message["on_behalf_of"] = on_behalf_of
        try:
            with self._send_lock:
                sock.sendall(orjson.dumps(message) + b"\n")
            reply = waiter.get(timeout=self.call_timeout_s)
        except gevent.Timeout:
            raise MasterUnavailable(f"{method}: no answer within {self.call_timeout_s}s") from None
        except OSError as exc:
            raise MasterUnavailable(f"{method}: {exc}") from None
        finally:
            self._pending.pop(request_id, None)
        if "error" in reply:
            raise RpcError.from_error(reply["error"])
        return reply.get("result")

    # -- the connection loop ---------------------------------------------------------------------
    def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stopping:
            reader: gevent.Greenlet | None = None
            try:
                # TCP_NODELAY: one small request per line, never wait for Nagle's algorithm.
                self._sock = connect(self.address, self.tls, timeout=5)
                if self.key and key_in_clear(self.address, self._sock):
                    log.warning(
                        "sending the key to %s in plaintext across the network: use "
                        "--master tls://HOST:TLS_PORT",
                        self.address,
                    )
                reader = gevent.spawn(self._read, self._sock)
                self._handshake()
            except (OSError, RpcError, MasterUnavailable) as exc:
                self._close()
                if reader is not None:
                    reader.kill()
                detail = describe_tls_error(exc) if isinstance(exc, ssl.SSLError) else exc
                self.last_error = f"master {self.address}: {detail}"
                # A refused hello (no or bad key) or an untrusted certificate needs the
                # operator; a master that is down does not.
                needs_operator = isinstance(exc, RpcError | ssl.SSLCertVerificationError)
                report = log.error if needs_operator else log.debug
                report("connect failed: %s; retrying in %.1fs", self.last_error, backoff)
                gevent.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            backoff = BACKOFF_START_S
            self._set_connected(True)
            log.info("connected to the master at %s", self.address)
            reader.join()
            self._close()
            self._set_connected(False)
            if not self._stopping:
                log.warning("lost the master connection: %s", self.last_error)
                gevent.sleep(BACKOFF_START_S)

    def _handshake(self) -> None:
        hello: dict[str, Any] = {"role": "api", "name": self.name, "proto": 1}
        if self.key:
            hello["key"] = self.key
        self._request("hello", hello)
        if self.topics:
            self._request("subscribe", {"topics": sorted(self.topics)})

    def _read(self, sock: socket.socket) -> None:
        buffer = b""
        try:
            while True:
                chunk = sock.recv(READ_CHUNK_BYTES)
                if not chunk:
                    self.last_error = "the master closed the connection"
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        self._dispatch(orjson.loads(line))
        except (OSError, orjson.JSONDecodeError) as exc:
            self.last_error = str(exc)
        finally:
            self._fail_pending()

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" not in message:
            waiter = self._pending.get(message.get("id"))  # type: ignore[arg-type]
            if waiter is not None:
                waiter.set(message)
            return
        if "id" in message:  # the dashboard takes no orders
            gevent.spawn(self._refuse, message["id"], message["method"])
            return
        params = message.get("params") or {}
        if message["method"] == "event" and self.on_event is not None:
            try:
                self.on_event(params.get("topic", ""), params.get("data"))
            except Exception:
                log.exception("event handler failed for %s", params.get("topic"))

    def _refuse(self, request_id: Any, method: str) -> None:
        error = {"code": -32601, "message": f"no such method {method}"}
        reply = {"jsonrpc": "2.0", "id": request_id, "error": error}
        sock = self._sock
        if sock is not None:
            with self._send_lock:
                sock.sendall(orjson.dumps(reply) + b"\n")

    def _fail_pending(self) -> None:
        for waiter in list(self._pending.values()):
            waiter.set_exception(MasterUnavailable(self.last_error or "connection lost"))
        self._pending.clear()

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        if up:
            self._up.set()
        else:
            self._up.clear()
        if self.on_state is not None:
            self.on_state(up)

    def _close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
