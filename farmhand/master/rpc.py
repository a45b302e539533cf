"""The JSON-RPC dialect: NDJSON lines in, API calls, responses and orders out.

Requests from the peer are answered in the order they arrive. Requests from the master to the
peer (orders to agents) wait on their response without blocking the reader.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from gevent.event import AsyncResult

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

from .api.surface import Api
from .connection import RECV_BYTES, Connection
from .peerguard import LogLimiter

log = logging.getLogger(__name__)

ORDER_TIMEOUT_S = 10.0


class RpcConnection(Connection):
    api: Api

    def attach(self, api: Api) -> RpcConnection:
        self.api = api
        self._pending: dict[int, AsyncResult] = {}
        self._callbacks: dict[int, Callable[[Any, RpcError | None], None]] = {}
        self._ids = itertools.count(1)
        return self

    # -- orders to the peer ------------------------------------------------------------------
    def call(self, method: str, params: dict[str, Any], timeout: float = ORDER_TIMEOUT_S) -> Any:
        """Send a request to the peer and wait for its result (RpcError on an error reply)."""
        if self.closed:
            raise RpcError(ErrorCode.CONFLICT, f"{self.session.peer} is disconnected", "offline")
        request_id = next(self._ids)
        waiter = AsyncResult()
        self._pending[request_id] = waiter
        try:
            self.send_bytes(encode_request(request_id, method, params))
            return waiter.get(timeout=timeout)
        finally:
            self._pending.pop(request_id, None)

    def call_async(
        self, method: str, params: dict[str, Any], on_reply: Callable[[Any, RpcError | None], None]
    ) -> None:
        """Send a request without waiting; on_reply(result, error) runs when the answer comes,
        or with an error when the connection ends first."""
        if self.closed:
            on_reply(None, RpcError(ErrorCode.CONFLICT, "peer disconnected", "offline"))
            return
        request_id = next(self._ids)
        self._callbacks[request_id] = on_reply
        self.send_bytes(encode_request(request_id, method, params))

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send_bytes(encode_notification(method, params))

    # -- reading ------------------------------------------------------------------------------
    def serve(self) -> None:
        decoder = LineDecoder(self.services.config.max_line_bytes)
        try:
            while not self.closed:
                try:
                    data = self.sock.recv(RECV_BYTES)
                except OSError:
                    break
                if not data:
                    break
                decoder.feed(data)
                while (line := decoder.next_line()) is not None:
                    self._handle_line(line)
        except LineTooLong as exc:
            log.warning("%s: %s; closing", self.session.peer, exc.message)
            self.send_bytes(encode_error(None, exc))
            self.close("line too long")
        finally:
            self._fail_pending()

    def _handle_line(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            message = parse_message(line)
        except ProtocolError as exc:
            self._log_limited(self.services.guard.bad_messages, "%s: bad message: %s", exc.message)
            self.send_bytes(encode_error(exc.request_id, exc))
            return
        client = self.session.client
        if client is not None and client.connection is self:
            clock = self.services.clock
            self.services.registry.heard_from(client, clock.wall(), clock.mono())
        if isinstance(message, Request):
            reply = self._answer(message)
            if reply is not None:
                self.send_bytes(reply)
        elif isinstance(message, Notification):
            self._take_notification(message)
        elif isinstance(message, Response):
            self._resolve(message.id, message.result, None)
        elif isinstance(message, ErrorResponse):
            self._resolve(message.id, None, message.error)

    def _answer(self, request: Request) -> bytes | None:
        """The reply's bytes, or None when the method answers later (it returned an
        AsyncResult, e.g. task.finished waits for its commit without blocking this reader)."""
        try:
            result = self.api.call(
                self.session, request.method, request.params, request.on_behalf_of
            )
            if isinstance(result, AsyncResult):
                result.rawlink(lambda done: self._answer_later(request, done))
                return None
            return encode_result(request.id, result)
        except RpcError as exc:
            log.debug("%s: %s → %s", self.session.peer, request.method, exc.message)
            return encode_error(request.id, exc)
        except Exception:
            log.exception("%s: %s failed", self.session.peer, request.method)
            internal = RpcError(
                ErrorCode.INTERNAL_ERROR,
                f"{request.method}: internal error (see master log)",
                "internal",
            )
            return encode_error(request.id, internal)

    def _answer_later(self, request: Request, done: AsyncResult) -> None:
        if done.successful():
            self.send_bytes(encode_result(request.id, done.value))
            return
        error = done.exception
        if not isinstance(error, RpcError):
            log.error("%s: %s failed: %r", self.session.peer, request.method, error)
            error = RpcError(
                ErrorCode.INTERNAL_ERROR, f"{request.method}: internal error", "internal"
            )
        self.send_bytes(encode_error(request.id, error))

    def _take_notification(self, note: Notification) -> None:
        # JSON-RPC forbids replies to notifications: problems are logged for the operator.
        try:
            self.api.call(self.session, note.method, note.params)
        except RpcError as exc:
            self._log_limited(
                self.services.guard.refused_notifications,
                "%s: notification %s refused: %s",
                note.method,
                exc.message,
            )
        except Exception:
            log.exception("%s: notification %s failed", self.session.peer, note.method)

    def _log_limited(self, limiter: LogLimiter, message: str, *args: object) -> None:
        # A hostile peer can send these at line rate: the log gets a line, then a summary.
        session = self.session
        limiter.warn(session.peer_host, self.services.clock.mono(), message, session.peer, *args)

    def _resolve(self, request_id: Any, result: Any, error: RpcError | None) -> None:
        callback = self._callbacks.pop(request_id, None) if isinstance(request_id, int) else None
        if callback is not None:
            callback(result, error)
            return
        waiter = self._pending.get(request_id) if isinstance(request_id, int) else None
        if waiter is None:
            log.info("%s: response to unknown request id %r ignored", self.session.peer, request_id)
            return
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set(result)

    def _fail_pending(self) -> None:
        for waiter in self._pending.values():
            waiter.set_exception(
                RpcError(ErrorCode.CONFLICT, f"{self.session.peer} disconnected", "offline")
            )
        self._pending.clear()
        callbacks, self._callbacks = self._callbacks, {}
        gone = RpcError(ErrorCode.CONFLICT, f"{self.session.peer} disconnected", "offline")
        for callback in callbacks.values():
            try:
                callback(None, gone)
            except Exception:
                log.exception("%s: reply callback failed", self.session.peer)
