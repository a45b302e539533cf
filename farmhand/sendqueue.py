"""A bounded send queue for one socket, drained by its own writer greenlet (gevent).

Anything may queue bytes without blocking on the socket. A peer that does not read is cut off
(the master's side: nobody may stall it) or makes its senders wait (a client's side:
backpressure, nothing lost); see `Overflow`. The JSON-RPC transport (farmhand/transport.py) and
the master's console (farmhand/master/console/shell.py) both write through it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections import deque
from enum import StrEnum

import gevent
from gevent.event import Event

from protocol.peer import PeerClosed

log = logging.getLogger(__name__)

RECV_BYTES = 64 * 1024
# Queued messages are coalesced into one sendall of at most this many bytes.
SEND_BATCH_BYTES = 256 * 1024
CLOSE_FLUSH_TIMEOUT_S = 2.0
# A writer greenlet with nothing to send for this long exits (~8 KB each at 10,000 agents).
WRITER_IDLE_S = 2.0
DEFAULT_SEND_QUEUE_BYTES = 16 << 20
PEER_CLOSED_REASON = "connection closed by peer"


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
