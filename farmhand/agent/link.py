"""An agent's JSON-RPC link to the master over one TCP connection.

Both sides send requests: the agent calls the master (`hello`, reports) and the master sends
orders, which run in their own greenlets so a slow order never blocks the reader.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import AsyncResult
from gevent.lock import BoundedSemaphore

from protocol.errors import ErrorCode, ProtocolError, RpcError
from protocol.framing import LineDecoder, LineTooLong
from protocol.jsonrpc import (
    ErrorResponse,
    Notification,
    Request,
    Response,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    parse_message,
)

log = logging.getLogger(__name__)

OrderHandler = Callable[[dict[str, Any]], Any]
CALL_TIMEOUT_S = 10.0


class LinkClosed(RpcError):
    def __init__(self) -> None:
        super().__init__(ErrorCode.CONFLICT, "the connection to the master is closed", "offline")


class MasterLink:
    def __init__(self, sock: socket.socket, handlers: dict[str, OrderHandler]) -> None:
        self.sock = sock
        self.handlers = handlers
        self.closed = False
        self._send_lock = BoundedSemaphore()
        self._pending: dict[int, AsyncResult] = {}
        self._ids = itertools.count(1)

    def _send(self, data: bytes) -> None:
        if self.closed:
            raise LinkClosed()
        with self._send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                self.close()
                raise LinkClosed() from None

    def call(self, method: str, params: dict[str, Any], timeout: float = CALL_TIMEOUT_S) -> Any:
        request_id = next(self._ids)
        waiter = AsyncResult()
        self._pending[request_id] = waiter
        try:
            self._send(encode_request(request_id, method, params))
            return waiter.get(timeout=timeout)
        finally:
            self._pending.pop(request_id, None)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._send(encode_notification(method, params))

    def serve(self) -> None:
        """Read until the connection ends."""
        decoder = LineDecoder()
        try:
            while not self.closed:
                data = self.sock.recv(64 * 1024)
                if not data:
                    break
                decoder.feed(data)
                while (line := decoder.next_line()) is not None:
                    self._take(line)
        except (OSError, LineTooLong) as exc:
            if not self.closed:
                log.warning("connection to the master failed: %s", exc)
        finally:
            self.close()

    def _take(self, line: bytes) -> None:
        try:
            message = parse_message(line)
        except ProtocolError as exc:
            log.warning("bad message from the master: %s", exc.message)
            return
        if isinstance(message, Response | ErrorResponse):
            waiter = self._pending.get(message.id) if isinstance(message.id, int) else None
            if waiter is None:
                return
            if isinstance(message, Response):
                waiter.set(message.result)
            else:
                waiter.set_exception(message.error)
        elif isinstance(message, Request | Notification):
            gevent.spawn(self._run_order, message)

    def _run_order(self, message: Request | Notification) -> None:
        request_id = message.id if isinstance(message, Request) else None
        handler = self.handlers.get(message.method)
        try:
            if handler is None:
                raise RpcError(
                    ErrorCode.METHOD_NOT_FOUND,
                    f"this agent does not handle {message.method!r}",
                    "no_such_method",
                )
            result = handler(message.params)
            reply = encode_result(request_id, {} if result is None else result)
        except RpcError as exc:
            reply = encode_error(request_id, exc)
        except Exception:
            log.exception("order %s failed", message.method)
            reply = encode_error(
                request_id,
                RpcError(
                    ErrorCode.INTERNAL_ERROR, f"{message.method} failed on the agent", "internal"
                ),
            )
        if request_id is not None and not self.closed:
            with contextlib.suppress(LinkClosed):
                self._send(reply)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for waiter in self._pending.values():
            waiter.set_exception(LinkClosed())
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
