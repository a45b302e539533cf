"""The master's TLS port: the same two dialects as the plain port, after a TLS handshake.

The handshake runs in the connection's own greenlet with a deadline, so a peer that connects
and stays silent (or sends plain bytes) holds a slot for at most tls_handshake_timeout_s and
is closed without an answer. The dialect is then sniffed from the decrypted bytes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from typing import Any

import gevent

from farmhand.tls import TlsContext, server_context

from .api.surface import Api
from .config import MasterConfig
from .server import MasterServer
from .services import Services

log = logging.getLogger(__name__)


def load_server_context(config: MasterConfig) -> TlsContext | None:
    """The TLS context from --tls-cert/--tls-key, None without TLS; ValueError (one line) when
    the files are missing or do not load."""
    if not config.tls_enabled:
        return None
    assert config.tls_cert is not None and config.tls_key is not None
    return server_context(config.tls_cert, config.tls_key)


class TlsMasterServer(MasterServer):
    tls = True

    def __init__(self, services: Services, api: Api, context: TlsContext) -> None:
        assert services.config.tls_port is not None
        super().__init__(services, api, port=services.config.tls_port)
        self.context = context

    def handle(self, sock: socket.socket, address: Any) -> None:
        peer = f"{address[0]}:{address[1]}"
        timeout_s = self.services.config.tls_handshake_timeout_s
        try:
            tls_sock = self.context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        except OSError as exc:  # the peer is already gone
            log.debug("%s: TLS connection failed: %s", peer, exc)
            sock.close()
            return
        try:
            with gevent.Timeout(timeout_s):
                tls_sock.do_handshake()
        except gevent.Timeout:
            log.info("%s: no TLS handshake within %.1fs: closed", peer, timeout_s)
            _close(tls_sock)
            return
        except ssl.SSLError as exc:
            # Plain bytes (a console, HTTP, a JSON-RPC line) on the TLS port end up here.
            log.info("%s: TLS handshake failed (%s): closed", peer, exc.reason or exc)
            _close(tls_sock)
            return
        except OSError as exc:
            log.debug("%s: TLS handshake failed: %s", peer, exc)
            _close(tls_sock)
            return
        log.debug("%s: TLS %s, %s", peer, tls_sock.version(), (tls_sock.cipher() or ("?",))[0])
        super().handle(tls_sock, address)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
