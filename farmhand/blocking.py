"""The one JSON-RPC peer (protocol/peer.py) on a blocking stdlib socket: no gevent, no threads.

`Connection.call` sends a request and reads until its answer comes; notifications that arrive
meanwhile are kept for `next_notification`, requests from the other side are refused (a client
takes no orders). The public client, the node's local commands and the tests' clients use it.
Standard library only, like protocol/.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from protocol.errors import ErrorCode, RpcError
from protocol.framing import MAX_ANSWER_LINE_BYTES, LineTooLong
from protocol.peer import (
    BadMessage,
    Closed,
    Notification,
    PeerClosed,
    Reply,
    Request,
    RpcPeer,
    StrayReply,
)
from protocol.peer import Event as PeerEvent

RECV_BYTES = 64 * 1024
# Notifications kept while nobody asks for them (a subscriber that stopped reading): the
# oldest go first beyond this.
MAX_KEPT_NOTIFICATIONS = 10_000
# How long `alive()` waits for the rest of a message that has begun to arrive.
POLL_READ_S = 0.05


class Unavailable(ConnectionError):
    """The other side cannot be reached, or the connection ended before the answer came."""


class Connection:
    """One JSON-RPC connection over a connected socket (TCP, TLS or unix)."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        name: str = "peer",
        max_line_bytes: int = MAX_ANSWER_LINE_BYTES,
    ) -> None:
        self.sock = sock
        self.name = name
        self.peer: RpcPeer[None] = RpcPeer(max_line_bytes)
        self.notifications: deque[Notification] = deque(maxlen=MAX_KEPT_NOTIFICATIONS)
        # Every byte received, for figures (the size of an answer).
        self.bytes_received = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.peer.close()
        with contextlib.suppress(OSError):
            self.sock.close()

    # -- sending -----------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        on_behalf_of: str | None = None,
    ) -> Any:
        """The result; RpcError when the other side answers with an error, TimeoutError when
        no answer comes within `timeout` seconds, Unavailable when the connection ends."""
        try:
            call_id, data = self.peer.request(method, params, None, on_behalf_of)
        except PeerClosed:
            raise Unavailable(f"{self.name}: the connection is closed") from None
        self._send(data)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            event = self._next(deadline)
            if event is None:
                self.peer.forget(call_id)
                raise TimeoutError(f"{method}: no answer from {self.name} within {timeout} s")
            if isinstance(event, Notification):
                self.notifications.append(event)
            elif isinstance(event, Reply) and event.id == call_id:
                if event.error is not None:
                    raise event.error
                return event.result

    def call_many(
        self, calls: Sequence[tuple[str, dict[str, Any] | None]], timeout: float | None = None
    ) -> list[Any]:
        """Pipelined: every request in one write, then the results in the same order; the
        first error answer is raised once all answers are in."""
        ids, requests = [], []
        for method, params in calls:
            try:
                call_id, data = self.peer.request(method, params, None)
            except PeerClosed:
                raise Unavailable(f"{self.name}: the connection is closed") from None
            ids.append(call_id)
            requests.append(data)
        self._send(b"".join(requests))
        deadline = None if timeout is None else time.monotonic() + timeout
        replies: dict[int, Reply[None]] = {}
        while len(replies) < len(ids):
            event = self._next(deadline)
            if event is None:
                for call_id in ids:
                    self.peer.forget(call_id)
                raise TimeoutError(f"{len(ids) - len(replies)} calls unanswered by {self.name}")
            if isinstance(event, Notification):
                self.notifications.append(event)
            elif isinstance(event, Reply):
                replies[event.id] = event
        for reply in replies.values():
            if reply.error is not None:
                raise reply.error
        return [replies[call_id].result for call_id in ids]

    def send_encoded(self, data: bytes) -> None:
        """Bytes made with this connection's `peer` (e.g. a batch of notifications encoded
        once): a sender that measures the other side, not its own encoder."""
        self._send(data)

    def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        try:
            data = self.peer.notification(method, params)
        except PeerClosed:
            raise Unavailable(f"{self.name}: the connection is closed") from None
        self._send(data)

    def _send(self, data: bytes) -> None:
        try:
            self.sock.settimeout(None)
            self.sock.sendall(data)
        except OSError as exc:
            self.close()
            raise Unavailable(f"{self.name}: {exc.strerror or exc}") from None

    # -- receiving ---------------------------------------------------------------------------------
    def next_notification(self, timeout: float | None = None) -> Notification | None:
        """The oldest notification not yet taken; None when none comes within `timeout`."""
        if self.notifications:
            return self.notifications.popleft()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            event = self._next(deadline)
            if event is None or isinstance(event, Notification):
                return event

    def drop_notifications(self, unwanted: Callable[[Notification], bool]) -> None:
        kept = [note for note in self.notifications if not unwanted(note)]
        self.notifications.clear()
        self.notifications.extend(kept)

    def alive(self) -> bool:
        """False when the other side has closed the connection (reads what has arrived)."""
        while not self._closed:
            try:
                readable, _, _ = select.select([self.sock], [], [], 0)
            except (OSError, ValueError):
                self.close()
                break
            if not readable:
                return True
            try:
                event = self._next(time.monotonic() + POLL_READ_S)
            except Unavailable:
                break
            if event is None:
                return True
            if isinstance(event, Notification):
                self.notifications.append(event)
        return False

    def _next(self, deadline: float | None) -> PeerEvent | None:
        """The next notification, reply or end; None at the deadline. Answers what needs an
        answer (requests, bad lines) on the way."""
        peer = self.peer
        while True:
            try:
                event = peer.next_event()
            except LineTooLong as exc:
                with contextlib.suppress(OSError, PeerClosed):
                    self.sock.sendall(peer.error(None, exc))
                self.close()
                raise Unavailable(f"{self.name}: {exc.message}") from None
            if isinstance(event, Closed):
                self.close()
                raise Unavailable(f"{self.name} closed the connection")
            if isinstance(event, Notification | Reply):
                return event
            if isinstance(event, Request):
                refusal = RpcError(
                    ErrorCode.METHOD_NOT_FOUND, "a client takes no requests", "no_such_method"
                )
                self._send(peer.error(event.id, refusal))
            elif isinstance(event, BadMessage):
                self._send(peer.error(event.error.request_id, event.error))
            elif isinstance(event, StrayReply):
                pass  # the answer to a call that timed out
            elif event is None and not self._receive(deadline):
                return None

    def _receive(self, deadline: float | None) -> bool:
        """Feed what arrives to the peer; False at the deadline."""
        if self._closed:
            raise Unavailable(f"{self.name}: the connection is closed")
        try:
            if deadline is None:
                self.sock.settimeout(None)
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
            data = self.sock.recv(RECV_BYTES)
        except TimeoutError:
            return False
        except OSError as exc:
            self.close()
            raise Unavailable(f"{self.name}: {exc.strerror or exc}") from None
        self.bytes_received += len(data)
        self.peer.receive_data(data)
        return True
