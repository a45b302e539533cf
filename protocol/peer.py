"""The JSON-RPC peer, sans-IO: one object owns one connection's protocol state (after h11).

Theory of operation: bytes that arrived go in with `receive_data` (b"" when the other side
closed); `next_event()` then hands out what they meant, one event at a time, and None when it
needs more bytes. Requests go both ways, so the peer keeps the table of our calls waiting for
an answer: `request()` gives the call an id, stores the caller's opaque context under it and
returns the bytes to send; the matching response comes out of `next_event()` as a `Reply`
carrying that context. Everything sent is bytes returned to the caller, who writes them. No
sockets, no clock, no threads: a call's timeout is the caller's (`forget` the call).

A line the peer cannot understand is a `BadMessage` event (answer it with `error()`, keep
going); a line over the limit breaks the connection: `next_event()` raises `LineTooLong`, the
one exception bad input can cause, and the connection should be closed after sending
`error(None, exc)`. Sending on a closed peer raises `PeerClosed`.

Before the first message, lines that start with `farmhand` are skipped: a client that spoke
only after the master's dialect wait has been sent the console's banner and prompt before the
master switched the connection to JSON-RPC (docs/protocol.md, the dialects).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar

from protocol.errors import ErrorCode, ProtocolError, RpcError
from protocol.framing import DEFAULT_MAX_LINE_BYTES, LineDecoder, LineTooLong
from protocol.jsonrpc import (
    ErrorResponse,
    Notification,
    Request,
    RequestId,
    Response,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    parse_message,
)

__all__ = [
    "BadMessage",
    "Closed",
    "Event",
    "LineTooLong",
    "Notification",
    "PeerClosed",
    "PeerState",
    "Reply",
    "Request",
    "RpcPeer",
    "StrayReply",
]

Context = TypeVar("Context")


class PeerState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # the other side closed, or we did: nothing more is sent or read
    BROKEN = "broken"  # the other side sent a line over the limit


class Trigger(StrEnum):
    EOF = "eof"  # receive_data(b""): the other side closed the connection
    CLOSE = "close"  # close(): we end the connection
    LINE_TOO_LONG = "line_too_long"


# (state, trigger) → state. A connection only ever ends; it never opens again.
TRANSITIONS: dict[tuple[PeerState, Trigger], PeerState] = {
    (PeerState.OPEN, Trigger.EOF): PeerState.CLOSED,
    (PeerState.OPEN, Trigger.CLOSE): PeerState.CLOSED,
    (PeerState.OPEN, Trigger.LINE_TOO_LONG): PeerState.BROKEN,
    (PeerState.CLOSED, Trigger.EOF): PeerState.CLOSED,
    (PeerState.CLOSED, Trigger.CLOSE): PeerState.CLOSED,
    (PeerState.BROKEN, Trigger.EOF): PeerState.BROKEN,
    (PeerState.BROKEN, Trigger.CLOSE): PeerState.BROKEN,
}


class PeerClosed(RpcError):
    """Sending on a connection that has ended. Reason `offline`, as callers expect of a peer
    that went away (an order to it counts as undelivered)."""

    def __init__(self, message: str = "the connection is closed") -> None:
        super().__init__(ErrorCode.CONFLICT, message, "offline")


@dataclass(frozen=True, slots=True)
class Reply(Generic[Context]):
    """The answer to one of our calls: `error` is None on success."""

    id: int
    result: Any
    error: RpcError | None
    context: Context


@dataclass(frozen=True, slots=True)
class StrayReply:
    """A response that answers none of our pending calls (late after `forget`, or made up)."""

    id: RequestId | None
    error: RpcError | None


@dataclass(frozen=True, slots=True)
class BadMessage:
    """A line that is not a valid message; `error.request_id` is set when an id was read."""

    error: ProtocolError


@dataclass(frozen=True, slots=True)
class Closed:
    """The other side closed the connection; every complete line before it was handed out."""


CLOSED = Closed()

Event = Request | Notification | Reply[Any] | StrayReply | BadMessage | Closed


# How the console's banner and prompt lines start (farmhand/master/console/shell.py).
CONSOLE_BANNER_START = b"farmhand"


class RpcPeer(Generic[Context]):
    """One connection's JSON-RPC state: framing, the ids and table of our pending calls, and
    the encoders. `Context` is whatever the caller wants back with a call's reply."""

    __slots__ = ("_calls", "_decoder", "_eof", "_next_id", "_started", "state")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._decoder = LineDecoder(max_line_bytes)
        self._started = False  # a message arrived: no more banner skipping
        # Allocated on the first call: most of the master's peers (agents that only send
        # heartbeats) are never called, and an empty dict per connection adds up.
        self._calls: dict[int, Context] | None = None
        self._next_id = 1
        self._eof = False
        self.state = PeerState.OPEN

    def _fire(self, trigger: Trigger) -> None:
        self.state = TRANSITIONS[(self.state, trigger)]

    @property
    def is_open(self) -> bool:
        return self.state is PeerState.OPEN

    @property
    def pending_calls(self) -> int:
        return len(self._calls) if self._calls else 0

    # -- receiving ------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        """Bytes that arrived; b"" when the other side closed the connection."""
        if not data:
            self._eof = True
        elif self.state is PeerState.OPEN:
            self._decoder.feed(data)

    def next_event(self) -> Event | None:
        """The next event, or None until more bytes arrive. Raises `LineTooLong` only."""
        if self.state is PeerState.BROKEN:
            raise LineTooLong(self._decoder.limit)
        if self.state is not PeerState.OPEN:
            return None
        decoder = self._decoder
        while True:
            try:
                line = decoder.next_line()
            except LineTooLong:
                self._fire(Trigger.LINE_TOO_LONG)
                raise
            if line is None:
                if self._eof:  # a partial line at the end is dropped: nobody will finish it
                    self._fire(Trigger.EOF)
                    return CLOSED
                return None
            if line and not line.isspace():  # blank lines are allowed between messages
                if not self._started:
                    if line.startswith(CONSOLE_BANNER_START):
                        continue  # the console's banner and prompt (docs/protocol.md)
                    self._started = True
                return self._event_of(line)

    def _event_of(self, line: bytes) -> Event:
        try:
            message = parse_message(line)
        except ProtocolError as exc:
            return BadMessage(exc)
        if type(message) is Request or type(message) is Notification:
            return message
        if type(message) is Response:
            return self._answered(message.id, message.result, None)
        assert type(message) is ErrorResponse
        return self._answered(message.id, None, message.error)

    def _answered(self, request_id: Any, result: Any, error: RpcError | None) -> Event:
        calls = self._calls
        # `type(...) is int`: our ids are ints, and True must not answer call 1.
        if calls and type(request_id) is int and request_id in calls:
            return Reply(request_id, result, error, calls.pop(request_id))
        return StrayReply(request_id, error)

    # -- sending --------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        params: dict[str, Any] | None,
        context: Context,
        on_behalf_of: str | None = None,
    ) -> tuple[int, bytes]:
        """Start a call: its id and the bytes to send. Its reply brings `context` back."""
        self._check_open()
        call_id = self._next_id
        self._next_id += 1
        data = encode_request(call_id, method, params, on_behalf_of)
        if self._calls is None:
            self._calls = {}
        self._calls[call_id] = context
        return call_id, data

    def forget(self, call_id: int) -> Context | None:
        """Stop waiting for a call (it timed out); a late answer becomes a `StrayReply`."""
        return self._calls.pop(call_id, None) if self._calls else None

    def notification(self, method: str, params: dict[str, Any] | None = None) -> bytes:
        self._check_open()
        return encode_notification(method, params)

    def result(self, request_id: RequestId, result: Any) -> bytes:
        """The answer to the other side's request `request_id`."""
        self._check_open()
        return encode_result(request_id, result)

    def error(self, request_id: RequestId | None, error: RpcError) -> bytes:
        """An error answer; `request_id` None when the request's id could not be read. Also
        allowed on a broken peer: the error that broke it is the last thing to send."""
        if self.state is PeerState.CLOSED:
            raise PeerClosed()
        return encode_error(request_id, error)

    def _check_open(self) -> None:
        if self.state is not PeerState.OPEN:
            raise PeerClosed()

    def close(self) -> list[Context]:
        """End the connection: the contexts of the calls that will never be answered now, each
        given out once. Safe to call again (and after the other side closed)."""
        self._fire(Trigger.CLOSE)
        calls, self._calls = self._calls, None
        return list(calls.values()) if calls else []
