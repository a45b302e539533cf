"""One peer's TCP connection: a bounded send queue drained by its own writer greenlet.

Anything may call `send_bytes` without blocking; a peer that lets more than
`config.send_queue_bytes` pile up is a slow consumer and is disconnected, so it can never stall
the master or other peers. `close(reason)` flushes what is queued (bounded by a timeout), then
shuts the socket so the reader sees end-of-file and cleans up.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections import deque

import gevent
from gevent.event import Event

from .services import Services
from .session import Session

log = logging.getLogger(__name__)

RECV_BYTES = 64 * 1024
# Queued messages are coalesced into one sendall of at most this many bytes.
SEND_BATCH_BYTES = 256 * 1024
CLOSE_FLUSH_TIMEOUT_S = 2.0
# A writer greenlet with nothing to send for this long exits (~8 KB each at 10,000 agents).
WRITER_IDLE_S = 2.0


class Connection:
    def __init__(self, sock: socket.socket, session: Session, services: Services) -> None:
        self.sock = sock
        self.session = session
        self.services = services
        self.close_reason: str | None = None
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._wakeup = Event()
        self._closed = False
        session.connection = self
        # Spawned on first use: most agents only send heartbeats, which get no reply, and an
        # idle greenlet per connection costs ~8 KB (86 MB at 10,000 agents).
        self._writer: gevent.Greenlet | None = None

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    def send_bytes(self, data: bytes) -> None:
        if self.close_reason is not None:
            return
        if self._queued_bytes + len(data) > self.services.config.send_queue_bytes:
            log.warning(
                "%s: %d bytes queued, peer is not reading: disconnecting",
                self.session.peer,
                self._queued_bytes,
            )
            self._queue.clear()
            self._queued_bytes = 0
            self.close("send queue full (slow consumer)")
            return
        self._queue.append(data)
        self._queued_bytes += len(data)
        self._wake_writer()

    def _wake_writer(self) -> None:
        if self._writer is None:
            self._writer = gevent.spawn(self._write_loop)
        self._wakeup.set()

    def close(self, reason: str) -> None:
        """Flush what is queued, then close. Safe to call many times and from any greenlet."""
        if self.close_reason is not None:
            return
        self.close_reason = reason
        log.debug("%s: closing: %s", self.session.peer, reason)
        self._wake_writer()

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
        self._shutdown_socket()

    def _flush(self) -> None:
        while self._queue:
            batch = [self._queue.popleft()]
            size = len(batch[0])
            while self._queue and size < SEND_BATCH_BYTES:
                size += len(self._queue[0])
                batch.append(self._queue.popleft())
            self._queued_bytes -= size
            self.sock.sendall(b"".join(batch) if len(batch) > 1 else batch[0])

    def _shutdown_socket(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        """Called by the server when the reader is done: stop the writer, close the socket."""
        if self.close_reason is None:
            self.close_reason = "peer closed the connection"
        if self._writer is not None:
            self._wakeup.set()
            self._writer.join(timeout=CLOSE_FLUSH_TIMEOUT_S + 0.5)
            self._writer.kill(block=False)
        with contextlib.suppress(OSError):
            self.sock.close()

    def serve(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError
