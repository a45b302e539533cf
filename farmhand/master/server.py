"""The master's TCP server: one port, the dialect chosen by its first byte (docs/protocol.md).

`{` starts JSON-RPC; any other byte starts the console. After dialect_wait_s of silence the
console's banner and prompt are sent, and the peer's first byte then decides: `{` still
switches to JSON-RPC (a slow client, not an operator), after a line end that closes the prompt.
A gevent Pool bounds how many connections are served at once.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

import gevent
from gevent.pool import Pool
from gevent.server import StreamServer

from farmhand.sendqueue import PEER_CLOSED_REASON

from .api.surface import Api
from .console.shell import ConsoleConnection
from .rpc import RpcConnection
from .services import Services
from .session import Session, is_loopback
from .ticker import Ticker

log = logging.getLogger(__name__)

LISTEN_BACKLOG = 2048
GUARD_TICK_S = 5.0
_SILENT = object()

# A connection of either dialect, as the server and `Services.connections` hold it.
MasterConnection = RpcConnection | ConsoleConnection


class MasterServer(StreamServer):  # type: ignore[misc]
    # Whether connections arrive over TLS (farmhand.master.tls.TlsMasterServer), for Session.tls.
    tls = False

    def __init__(self, services: Services, api: Api, port: int | None = None) -> None:
        config = services.config
        super().__init__(
            (config.host, config.port if port is None else port),
            spawn=Pool(config.max_connections),
            backlog=LISTEN_BACKLOG,
        )
        self.services = services
        self.api = api
        self._guard_ticker = Ticker(
            "peer guard", GUARD_TICK_S, lambda: services.guard.tick(services.clock.mono())
        )

    def start(self) -> None:
        super().start()
        self._guard_ticker.start()

    def close(self) -> None:
        self._guard_ticker.stop()
        super().close()

    def handle(self, sock: socket.socket, address: Any) -> None:
        host, port = address[0], address[1]
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        dialect = self._sniff_dialect(sock, self.services.config.dialect_wait_s)
        greeted = False
        if dialect is _SILENT:
            # An operator's `nc` or `telnet` waits for the banner; a slow JSON-RPC client
            # speaks first. Greet, then let the first byte decide.
            greeted = True
            try:
                sock.sendall(ConsoleConnection.greeting(self.services, self._session(host, port)))
                dialect = self._sniff_dialect(sock, None)
                if dialect == "rpc":
                    sock.sendall(b"\r\n")  # ends the prompt's line: JSON lines start afresh
            except OSError:
                dialect = None
        if dialect is None or dialect is _SILENT:
            sock.close()
            return
        session = self._session(host, port, dialect)
        connection: MasterConnection
        if dialect == "rpc":
            connection = RpcConnection(sock, session, *self._deps)
        else:
            connection = ConsoleConnection(sock, session, *self._deps, greeted=greeted)
        self.services.connections.add(connection)
        log.debug("%s connected (%s)", session.peer, dialect)
        try:
            connection.serve()
        except Exception:
            log.exception("%s: connection failed", session.peer)
        finally:
            self._clean_up(connection)

    @property
    def _deps(self) -> tuple[Services, Api]:
        return self.services, self.api

    def _session(self, host: str, port: int, dialect: str = "console") -> Session:
        return Session(
            peer_host=host,
            peer_port=port,
            dialect=dialect,
            trusted=is_loopback(host) and not self.services.config.require_key,
            tls=self.tls,
        )

    def _sniff_dialect(self, sock: socket.socket, wait_s: float | None) -> Any:
        """ "rpc", "console", None (closed) or _SILENT (nothing within `wait_s`)."""
        first: Any = _SILENT
        with gevent.Timeout(wait_s, False):
            try:
                first = sock.recv(1, socket.MSG_PEEK)
            except OSError:
                return None
        if first is _SILENT:
            return _SILENT
        if not first:
            return None
        return "rpc" if first == b"{" else "console"

    def _clean_up(self, connection: MasterConnection) -> None:
        services = self.services
        session = connection.session
        services.connections.discard(connection)
        # Only a JSON-RPC peer subscribes to events and says hello as a client.
        if isinstance(connection, RpcConnection):
            services.events.unsubscribe(connection)
            if session.client is not None:
                services.registry.disconnect(
                    session.client,
                    connection,
                    services.clock.wall(),
                    connection.close_reason or PEER_CLOSED_REASON,
                )
        connection.finish()
        log.debug("%s disconnected: %s", session.peer, connection.close_reason)
