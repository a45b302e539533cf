"""The JSON-RPC dialect of the master's port: one `RpcConnection` per peer, the one transport
(farmhand/transport.py) with the master's rules on top.

Requests from the peer run through the `Api` in the reader and are answered in the order they
arrive; a method may answer later (it returns an AsyncResult: task.finished waits for its commit
without holding up the reader). Orders to the peer (`call`, `call_async`) never block the reader.
A peer that does not read what it is sent is cut off (Overflow.CUT). Every well-formed message
counts as a sign of life of the peer's client.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from farmhand.transport import Overflow, RpcTransport
from protocol.errors import ProtocolError, RpcError
from protocol.jsonrpc import Notification, Request

from .api.surface import Api
from .peerguard import LogLimiter
from .services import Services
from .session import Session

log = logging.getLogger(__name__)


class RpcConnection(RpcTransport):
    internal_error_message = "{method}: internal error (see master log)"

    def __init__(self, sock: socket.socket, session: Session, services: Services, api: Api):
        config = services.config
        super().__init__(
            sock,
            name=session.peer,
            max_line_bytes=config.max_line_bytes,
            send_queue_bytes=config.send_queue_bytes,
            overflow=Overflow.CUT,
        )
        self.session = session
        self.services = services
        self.api = api
        session.connection = self

    def heard(self) -> None:
        client = self.session.client
        if client is not None and client.connection is self:
            clock = self.services.clock
            self.services.registry.heard_from(client, clock.wall(), clock.mono())

    def handle_request(self, request: Request) -> Any:
        return self.api.call(self.session, request.method, request.params, request.on_behalf_of)

    def handle_notification(self, note: Notification) -> None:
        self.api.call(self.session, note.method, note.params)

    def bad_message(self, error: ProtocolError) -> None:
        self._log_limited(self.services.guard.bad_messages, "%s: bad message: %s", error.message)
        if not self.closed:
            self.send_bytes(self.peer.error(error.request_id, error))

    def notification_refused(self, note: Notification, error: RpcError) -> None:
        self._log_limited(
            self.services.guard.refused_notifications,
            "%s: notification %s refused: %s",
            note.method,
            error.message,
        )

    def _log_limited(self, limiter: LogLimiter, message: str, *args: object) -> None:
        # A hostile peer can send these at line rate: the log gets a line, then a summary.
        session = self.session
        limiter.warn(session.peer_host, self.services.clock.mono(), message, session.peer, *args)
