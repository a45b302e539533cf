"""gevent I/O for farmhand's connections: a bounded send queue drained by its own writer
greenlet, and the JSON-RPC transport that runs the sans-IO peer (protocol/peer.py) on a socket.

The master serves every connection with these (the console keeps its own line reader over the
same send queue), and every agent, the dashboard, the node's control socket and the benches talk
through them. A peer that stops reading is cut off (the master: nobody may stall it) or makes
its senders wait (an agent: its reports are held back, not lost); see `Overflow`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import partial
from typing import Any

import gevent
from gevent.event import AsyncResult, Event

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

log = logging.getLogger(__name__)

RECV_BYTES = 64 * 1024
# Queued messages are coalesced into one sendall of at most this many bytes.
SEND_BATCH_BYTES = 256 * 1024
CLOSE_FLUSH_TIMEOUT_S = 2.0
# A writer greenlet with nothing to send for this long exits (~8 KB each at 10,000 agents).
WRITER_IDLE_S = 2.0
DEFAULT_SEND_QUEUE_BYTES = 16 << 20
CALL_TIMEOUT_S = 10.0
PEER_CLOSED_REASON = "connection closed by peer"

# on_reply(result, error): error is None on success, an RpcError when the other side refused
# or the connection ended first (PeerClosed, reason `offline`).
ReplyCallback = Callable[[Any, RpcError | None], None]
# An order handler of an agent: params in, result out (None is answered as {}).
Handler = Callable[[dict[str, Any]], Any]


class Overflow(StrEnum):
    """What a send does when more than the queue's limit is waiting for the other side."""

    CUT = "cut"  # the peer is a slow consumer: disconnect it (the master's side)
    WAIT = "wait"  # the sender waits for room (a client's side: backpressure, nothing lost)


class SendQueue:
    """Bytes for one socket, queued without blocking and written by a writer greenlet.

    The writer is spawned on the first send and exits after WRITER_IDLE_S with nothing to do:
    most of the master's peers only send heartbeats, and an idle greenlet per connection costs
    ~8 KB (86 MB at 10,000 agents). `close(reason)` flushes what is queued (bounded by
    CLOSE_FLUSH_TIMEOUT_S) and then shuts the socket, so its reader sees the end; `finish()`
    is for the reader once it is done: it stops the writer and closes the socket.
    """

    def __init__(
        self,
        sock: socket.socket,
        *,
        name: str,
        send_queue_bytes: int = DEFAULT_SEND_QUEUE_BYTES,
        overflow: Overflow = Overflow.CUT,
    ) -> None:
        self.sock = sock
        self.name = name
        self.close_reason: str | None = None
        self._limit = send_queue_bytes
        self._overflow = overflow
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wakeup = Event()
        self._writer: gevent.Greenlet | None = None
        # Set when the queue drained (or closed): senders waiting for room (Overflow.WAIT).
        self._room: Event | None = None
        # The greenlet that reads this socket: it never waits for room, or two peers each
        # waiting for the other to read would never read again.
        self._reader: gevent.Greenlet | None = None

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting for the other side to read them."""
        return self._queued_bytes

    def send_bytes(self, data: bytes) -> None:
        """Queue `data`. Once closed it is dropped (Overflow.CUT) or PeerClosed is raised
        (Overflow.WAIT, which also waits while the queue is over its limit)."""
        if self.close_reason is None and self._queued_bytes + len(data) > self._limit:
            if self._overflow is Overflow.CUT:
                log.warning(
                    "%s: %d bytes queued, peer is not reading: disconnecting",
                    self.name,
                    self._queued_bytes,
                )
                self._queue.clear()
                self._queued_bytes = 0
                self.close("send queue full (slow consumer)")
                return
            self._wait_for_room(len(data))
        if self.close_reason is not None:
            if self._overflow is Overflow.WAIT:
                raise PeerClosed(f"{self.name} is disconnected")
            return
        self._queue.append(data)
        self._queued_bytes += len(data)
        self._wake_writer()

    def _wait_for_room(self, size: int) -> None:
        """Until the queue has room for `size` bytes (a message alone always fits)."""
        if gevent.getcurrent() is self._reader:
            return  # the reader must keep reading: it queues over the limit instead
        while self.close_reason is None and self._queue and self._queued_bytes + size > self._limit:
            if self._room is None:
                self._room = Event()
            self._room.clear()
            self._wake_writer()
            self._room.wait()

    def _wake_writer(self) -> None:
        if self._writer is None:
            self._writer = gevent.spawn(self._write_loop)
        self._wakeup.set()

    def close(self, reason: str = "closed") -> None:
        """Flush what is queued, then close. Safe to call many times and from any greenlet."""
        if self.close_reason is not None:
            return
        self.close_reason = reason
        log.debug("%s: closing: %s", self.name, reason)
        if self._writer is None and not self._queue:
            self._shutdown_socket()  # nothing to flush: no writer just to end the stream
        else:
            self._wake_writer()
        if self._room is not None:
            self._room.set()

    def _write_loop(self) -> None:
        try:
            while True:
                if not self._wakeup.wait(timeout=WRITER_IDLE_S):
                    if not self._queue and self.close_reason is None:
                        # Idle: give the greenlet back; the next send spawns a new one. No
                        # other greenlet runs between this check and the assignment.
                        self._writer = None
                        return
                    continue
                self._wakeup.clear()
                if self.close_reason is not None:
                    with gevent.Timeout(CLOSE_FLUSH_TIMEOUT_S, False):
                        self._flush()
                    break
                self._flush()
        except OSError as exc:
            if self.close_reason is None:
                self.close_reason = f"send failed: {exc}"
        finally:
            if self._room is not None:
                self._room.set()
        self._shutdown_socket()

    def _flush(self) -> None:
        queue = self._queue
        while queue:
            batch = [queue.popleft()]
            size = len(batch[0])
            while queue and size < SEND_BATCH_BYTES:
                size += len(queue[0])
                batch.append(queue.popleft())
            self._queued_bytes -= size
            self.sock.sendall(b"".join(batch) if len(batch) > 1 else batch[0])
            if self._room is not None and self._queued_bytes <= self._limit:
                self._room.set()

    def _shutdown_socket(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        """Called when the reader is done: stop the writer, close the socket."""
        if self.close_reason is None:
            self.close_reason = PEER_CLOSED_REASON
        if self._room is not None:
            self._room.set()
        if self._writer is not None:
            self._wakeup.set()
            self._writer.join(timeout=CLOSE_FLUSH_TIMEOUT_S + 0.5)
            self._writer.kill(block=False)
        with contextlib.suppress(OSError):
            self.sock.close()


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
