"""farmhand/tls.py's socket in-process over a real TLS connection (a socketpair, certificates from
contrib/make-farm-ca.sh): MSG_PEEK behaves as on TCP (the master sniffs the dialect with it),
and shutdown ends reads as on TCP, keeps the TLS state and sends close_notify."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import gevent
import pytest
from gevent import socket as gsocket

from farmhand.tls import TlsSocket, client_context, server_context
from tests.tlscerts import FarmCa, make_farm_ca


@pytest.fixture(scope="module")
def farm_ca(tmp_path_factory: pytest.TempPathFactory) -> FarmCa:
    return make_farm_ca(tmp_path_factory.mktemp("ca"), "localhost")


@pytest.fixture
def pair(farm_ca: FarmCa) -> Iterator[tuple[TlsSocket, TlsSocket]]:
    left, right = gsocket.socketpair()
    server = server_context(farm_ca.cert, farm_ca.key).wrap_socket(
        left, server_side=True, do_handshake_on_connect=False
    )
    client = client_context(farm_ca.ca).wrap_socket(
        right, server_hostname="localhost", do_handshake_on_connect=False
    )
    with gevent.Timeout(10):
        gevent.joinall([gevent.spawn(server.do_handshake), gevent.spawn(client.do_handshake)])
    assert server.version() in ("TLSv1.2", "TLSv1.3")
    yield server, client
    server.close()
    client.close()


def test_peek_is_like_tcp_then_recv_returns_the_same_bytes(
    pair: tuple[TlsSocket, TlsSocket],
) -> None:
    server, client = pair
    client.sendall(b'{"jsonrpc"')
    with gevent.Timeout(5):
        assert server.recv(1, socket.MSG_PEEK) == b"{"  # blocks for the first byte
        assert server.recv(64, socket.MSG_PEEK) == b'{"jsonrpc"'  # then what has arrived
        assert server.recv(64, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b'{"jsonrpc"'
        client.sendall(b':"2.0"}\n')
        gevent.sleep(0.05)
        assert server.recv(64, socket.MSG_PEEK) == b'{"jsonrpc":"2.0"}\n'  # grows without blocking
        assert server.recv(3) == b'{"j'  # nothing peeked is lost
        assert server.recv(64) == b'sonrpc":"2.0"}\n'
        client.sendall(b"next")
        assert server.recv(64) == b"next"


def test_a_peek_with_nothing_waiting_does_not_block_with_dontwait(
    pair: tuple[TlsSocket, TlsSocket],
) -> None:
    server, _ = pair
    with gevent.Timeout(5):
        assert server.recv(8, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""


def test_after_shutdown_reads_end_like_a_plain_socket(
    pair: tuple[TlsSocket, TlsSocket],
) -> None:
    """A connection's reader sees an OSError or end-of-file after another greenlet shuts the
    socket, as with plain TCP, and the TLS state stays (gevent's SSLSocket drops it, and its
    next recv/send would use the raw socket)."""
    server, client = pair
    blocked = gevent.spawn(server.recv, 1024)
    gevent.sleep(0.05)
    server.shutdown(socket.SHUT_RDWR)
    with gevent.Timeout(5):
        blocked.join()
        assert blocked.value == b"" or isinstance(blocked.exception, OSError), blocked.exception
        with contextlib.suppress(OSError):
            assert server.recv(1024) == b""  # the next read: end-of-file, or an OSError
        assert server._sslobj is not None  # still TLS: nothing falls through to the raw socket
        assert client.recv(1024) == b""  # the peer sees a clean close (close_notify)
