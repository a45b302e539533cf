"""The ports the master's services talk through, as Protocols: what the registry, the job farm,
the device hub and the API may do with a peer's connection, and nothing more.

A `Peer` is an agent's (or an API client's) JSON-RPC connection: orders go out with `call` (wait
for the answer) or `call_async` (the answer comes to a callback, never to a waiting greenlet),
`notify` sends a notification, `close` ends the connection. An `EventSink` takes the encoded
`event` notifications of the topics it subscribed to. A `ServedConnection` is any connection the
server serves (JSON-RPC or console), as `Services.connections` holds it. Tests pass small fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from protocol.errors import RpcError

if TYPE_CHECKING:
    from .session import Session

# on_reply(result, error): error is None on success; an RpcError when the peer refused, the
# connection ended first, or no answer came in time.
ReplyCallback = Callable[[Any, RpcError | None], None]


class Peer(Protocol):
    """An open JSON-RPC connection the master can send orders through."""

    @property
    def closed(self) -> bool: ...

    def call(self, method: str, params: dict[str, Any], timeout: float = ...) -> Any:
        """Send a request and wait for its result; RpcError on an error reply or timeout."""
        ...

    def call_async(self, method: str, params: dict[str, Any], on_reply: ReplyCallback) -> None:
        """Send a request without waiting; `on_reply` runs once, when the answer comes."""
        ...

    def notify(self, method: str, params: dict[str, Any]) -> None: ...

    def close(self, reason: str) -> None:
        """Flush what is queued, then close; safe to call many times."""
        ...


class EventSink(Protocol):
    """A subscriber of the event bus: takes already encoded notification lines."""

    def send_bytes(self, data: bytes) -> None: ...


class PeerConnection(Peer, EventSink, Protocol):
    """What a session holds: its peer's connection, which orders go out through and which
    takes the events the session subscribed to (farmhand.master.rpc.RpcConnection)."""


class ServedConnection(Protocol):
    """A connection of either dialect the server serves: its session, and how to end it."""

    @property
    def session(self) -> Session: ...

    def close(self, reason: str) -> None: ...
