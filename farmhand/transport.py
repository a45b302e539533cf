"""The one gevent transport: the sans-IO JSON-RPC peer (protocol/peer.py) on a socket, with a
reader loop and the bounded send queue of farmhand/sendqueue.py.

The master serves every JSON-RPC connection with it, and every agent, the dashboard, the node's
control socket and the benches talk through it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import gevent
from gevent.event import AsyncResult

from protocol.errors import ErrorCode, ProtocolError, RpcError
from protocol.framing import DEFAULT_MAX_LINE_BYTES, LineTooLong
from protocol.peer import (
    BadMessage,
    Notification,
    PeerClosed,
    Reply,
    Request,
    RpcPeer,
    StrayReply,
)
from protocol.peer import Event as PeerEvent

from .sendqueue import (
    DEFAULT_SEND_QUEUE_BYTES,
    PEER_CLOSED_REASON,
    RECV_BYTES,
    Overflow,
    SendQueue,
)

__all__ = ["Handler", "Overflow", "ReplyCallback", "RpcTransport"]

log = logging.getLogger(__name__)

CALL_TIMEOUT_S = 10.0

# on_reply(result, error): error is None on success, an RpcError when the other side refused
# or the connection ended first (PeerClosed, reason `offline`).
ReplyCallback = Callable[[Any, RpcError | None], None]
# An order handler of an agent: params in, result out (None is answered as {}).
Handler = Callable[[dict[str, Any]], Any]


def _resolve(waiter: AsyncResult, result: Any, error: RpcError | None) -> None:
    if error is not None:
        waiter.set_exception(error)
    else:
        waiter.set(result)


class RpcTransport(SendQueue):
    """One JSON-RPC connection: `serve()` reads (in the caller's greenlet) and answers the
    other side's requests; `call` waits for an answer, `call_async` hands it to a callback
    (never to a waiting greenlet), `notify` sends a notification, `close` ends it.

    Requests from the other side go to `handle_request` (by default: `handlers[method]`), which
    returns the result, raises RpcError, or returns an AsyncResult to answer later without
    holding up the reader. With `spawn_requests` each runs in its own greenlet (an agent's
    orders may take seconds); without, in the reader, answered in the order they arrived.
    """

    spawn_requests = False
    # The message of the -32603 answer when a handler fails with an unexpected exception.
    internal_error_message = "{method}: internal error"

    def __init__(
        self,
        sock: socket.socket,
        *,
        name: str,
        handlers: Mapping[str, Handler] | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        send_queue_bytes: int = DEFAULT_SEND_QUEUE_BYTES,
        overflow: Overflow = Overflow.CUT,
    ) -> None:
        super().__init__(sock, name=name, send_queue_bytes=send_queue_bytes, overflow=overflow)
        self.peer: RpcPeer[ReplyCallback] = RpcPeer(max_line_bytes)
        self.handlers: Mapping[str, Handler] = handlers or {}

    # -- calls to the other side ---------------------------------------------------------------
    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        timeout: float = CALL_TIMEOUT_S,
        on_behalf_of: str | None = None,
    ) -> Any:
        """Send a request and wait for its result: RpcError on an error answer (PeerClosed when
        the connection ends first), gevent.Timeout when none comes within `timeout`."""
        waiter = AsyncResult()
        call_id = self._start(method, params, partial(_resolve, waiter), on_behalf_of)
        try:
            return waiter.get(timeout=timeout)
        finally:
            self.peer.forget(call_id)

    def call_async(
        self, method: str, params: dict[str, Any] | None, on_reply: ReplyCallback
    ) -> None:
        """Send a request without waiting; on_reply(result, error) runs once, when the answer
        comes, or with PeerClosed when the connection ends first (at once if it has)."""
        try:
            self._start(method, params, on_reply, None)
        except PeerClosed as exc:
            on_reply(None, exc)

    def _start(
        self,
        method: str,
        params: dict[str, Any] | None,
        on_reply: ReplyCallback,
        on_behalf_of: str | None,
    ) -> int:
        if self.close_reason is not None:
            raise PeerClosed(f"{self.name} is disconnected")
        call_id, data = self.peer.request(method, params, on_reply, on_behalf_of)
        try:
            self.send_bytes(data)
        except PeerClosed:
            self.peer.forget(call_id)
            raise
        return call_id

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        """Send a notification; PeerClosed when the connection has ended."""
        if self.close_reason is not None:
            raise PeerClosed(f"{self.name} is disconnected")
        self.send_bytes(self.peer.notification(method, params))

    # -- reading ---------------------------------------------------------------------------------
    def serve(self) -> None:
        """Read until the connection ends; then it is closed and waiting calls fail."""
        self._reader = gevent.getcurrent()
        peer = self.peer
        try:
            while self.close_reason is None:
                try:
                    data = self.sock.recv(RECV_BYTES)
                except OSError as exc:
                    log.debug("%s: receive failed: %s", self.name, exc)
                    break
                peer.receive_data(data)
                while (event := peer.next_event()) is not None:
                    self._take(event)
                if not data:
                    break
        except LineTooLong as exc:
            log.warning("%s: %s; closing", self.name, exc.message)
            with contextlib.suppress(PeerClosed):
                self.send_bytes(peer.error(None, exc))
            self.close("line too long")
        finally:
            self.close(PEER_CLOSED_REASON)
            self._abandon_calls()

    def _take(self, event: PeerEvent) -> None:
        if isinstance(event, Request | Notification):
            self.heard()
            if self.spawn_requests:
                gevent.spawn(self._serve_message, event)
            else:
                self._serve_message(event)
        elif isinstance(event, Reply):
            self.heard()
            try:
                event.context(event.result, event.error)
            except Exception:
                log.exception("%s: reply callback failed", self.name)
        elif isinstance(event, StrayReply):
            self.heard()
            log.info("%s: response to unknown request id %r ignored", self.name, event.id)
        elif isinstance(event, BadMessage):
            self.bad_message(event.error)
        # Closed: the loop ends with the data that was b""

    def _serve_message(self, message: Request | Notification) -> None:
        if type(message) is Notification:
            self._take_notification(message)
            return
        assert isinstance(message, Request)
        try:
            result = self.handle_request(message)
        except Exception as exc:
            self._answer_error(message, exc)
            return
        if isinstance(result, AsyncResult):
            result.rawlink(partial(self._answer_later, message))
        else:
            self._answer(message, result)

    def _answer(self, request: Request, result: Any) -> None:
        if self.close_reason is not None:
            return
        try:
            data = self.peer.result(request.id, result)
        except PeerClosed:
            return
        except Exception as exc:  # a result that is not JSON
            self._answer_error(request, exc)
            return
        with contextlib.suppress(PeerClosed):
            self.send_bytes(data)

    def _answer_error(self, request: Request, exc: BaseException) -> None:
        if isinstance(exc, RpcError):
            log.debug("%s: %s → %s", self.name, request.method, exc.message)
            error = exc
        else:
            log.error("%s: %s failed", self.name, request.method, exc_info=exc)
            message = self.internal_error_message.format(method=request.method)
            error = RpcError(ErrorCode.INTERNAL_ERROR, message, "internal")
        if self.close_reason is not None:
            return
        with contextlib.suppress(PeerClosed):
            self.send_bytes(self.peer.error(request.id, error))

    def _answer_later(self, request: Request, done: AsyncResult) -> None:
        if done.successful():
            self._answer(request, done.value)
        else:
            self._answer_error(request, done.exception)

    def _take_notification(self, note: Notification) -> None:
        # JSON-RPC forbids replies to notifications: problems are logged for the operator.
        try:
            self.handle_notification(note)
        except RpcError as exc:
            self.notification_refused(note, exc)
        except Exception:
            log.exception("%s: notification %s failed", self.name, note.method)

    def _abandon_calls(self) -> None:
        calls = self.peer.close()
        if not calls:
            return
        gone = PeerClosed(f"{self.name} disconnected")
        for on_reply in calls:
            try:
                on_reply(None, gone)
            except Exception:
                log.exception("%s: reply callback failed", self.name)

    # -- what a side does with what it hears (override) -------------------------------------------
    def handle_request(self, request: Request) -> Any:
        handler = self.handlers.get(request.method)
        if handler is None:
            raise RpcError(
                ErrorCode.METHOD_NOT_FOUND,
                f"{request.method!r} is not handled here",
                "no_such_method",
            )
        return handler(request.params)

    def handle_notification(self, note: Notification) -> None:
        handler = self.handlers.get(note.method)
        if handler is None:
            log.debug("%s: notification %s ignored", self.name, note.method)
            return
        handler(note.params)

    def heard(self) -> None:
        """A well-formed message arrived (the master counts it as a sign of life)."""

    def bad_message(self, error: ProtocolError) -> None:
        """A line that is no valid message: answer it with the error and keep going."""
        log.warning("%s: bad message: %s", self.name, error.message)
        if self.close_reason is None:
            with contextlib.suppress(PeerClosed):
                self.send_bytes(self.peer.error(error.request_id, error))

    def notification_refused(self, note: Notification, error: RpcError) -> None:
        log.warning("%s: notification %s refused: %s", self.name, note.method, error.message)
