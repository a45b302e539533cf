"""TLS for farmhand's gevent links, shared by the master and every program that connects to
it: the server and client contexts (TLS 1.2 at least, forward-secret AEAD suites), the socket
class they make and `connect` (TCP, then TLS with the certificate and host name verified). What
needs no gevent (when a key would travel in clear, one-line descriptions of TLS failures) is in
farmhand/options.py, for the stdlib-only client too.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from pathlib import Path

from gevent import socket as gsocket
from gevent import ssl as gssl

from .options import MasterAddress, MasterList

MIN_TLS_VERSION = ssl.TLSVersion.TLSv1_2
# TLS 1.2 suites of Mozilla's "intermediate" profile: ECDHE/DHE key exchange and AEAD ciphers
# only. TLS 1.3 suites are not set by this string (OpenSSL's defaults are all good).
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"


class TlsSocket(gssl.SSLSocket):  # type: ignore[misc]
    """gevent's SSLSocket with two changes the farm's connections need.

    `recv(n, MSG_PEEK)` works (the master picks the dialect by peeking at the first bytes,
    which a plain SSLSocket refuses), and `shutdown` sends close_notify and ends the TCP stream
    but keeps the TLS state: gevent's drops it, after which recv and send fall through to the
    raw socket (ciphertext read as data, a late write sent in plaintext).
    """

    _peeked = b""

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        if flags & socket.MSG_PEEK:
            return self._peek(buflen, wait=not flags & socket.MSG_DONTWAIT)
        if flags:
            raise ValueError(f"recv flags {flags:#x} are not supported on a TLS socket")
        if self._peeked:
            peeked, self._peeked = self._peeked[:buflen], self._peeked[buflen:]
            return peeked
        data: bytes = super().recv(buflen)
        return data

    def _peek(self, buflen: int, wait: bool) -> bytes:
        """Like MSG_PEEK on TCP: block for the first bytes, then add whatever has arrived."""
        if len(self._peeked) < buflen:
            if not self._peeked and wait:
                self._peeked = super().recv(buflen)
            else:
                self._peeked += self._read_available(buflen - len(self._peeked))
        return self._peeked[:buflen]

    def _read_available(self, limit: int) -> bytes:
        timeout = self.gettimeout()
        self.settimeout(0.0)
        try:
            data: bytes = super().recv(limit)
            return data
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
            return b""
        finally:
            self.settimeout(timeout)

    def shutdown(self, how: int) -> None:
        self._checkClosed()
        if how != socket.SHUT_RD and self._sslobj is not None:
            # close_notify tells the peer the stream ended here (not cut by someone on the
            # path); one non-blocking try, the peer's own close_notify is not waited for.
            with contextlib.suppress(ssl.SSLError, OSError, ValueError):
                self._sslobj.shutdown()
        # Skip SSLSocket.shutdown, which drops the TLS object: shut only the TCP stream.
        super(gssl.SSLSocket, self).shutdown(how)


class TlsContext(gssl.SSLContext):  # type: ignore[misc]
    __slots__ = ()
    sslsocket_class = TlsSocket


def _modern(context: TlsContext) -> TlsContext:
    context.minimum_version = MIN_TLS_VERSION
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    return context


def server_context(cert: Path, key: Path) -> TlsContext:
    """The master's context; ValueError with one clear line when the files do not load."""
    context = _modern(TlsContext(ssl.PROTOCOL_TLS_SERVER))
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    for what, path in (("certificate", cert), ("key", key)):
        if not path.is_file():
            raise ValueError(f"TLS {what} file {path} does not exist")
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ValueError(
            f"cannot use TLS certificate {cert} with key {key}: {exc.reason or exc} "
            "(both PEM, the key unencrypted and matching the certificate)"
        ) from None
    except OSError as exc:
        raise ValueError(f"cannot read TLS certificate {cert} or key {key}: {exc}") from None
    return context


def client_context(ca: Path | None) -> TlsContext:
    """Verifies the master's certificate (against `ca`, else the system's CAs) and host name."""
    context = _modern(TlsContext(ssl.PROTOCOL_TLS_CLIENT))
    try:
        if ca is not None:
            context.load_verify_locations(cafile=str(ca))
        else:
            context.load_default_certs()
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ValueError(f"cannot use CA file {ca}: {reason}") from None
    return context


def connect(address: MasterAddress, context: TlsContext | None, timeout: float) -> gsocket.socket:
    """A connected socket to the master; for tls:// the handshake is done and verified."""
    sock = gsocket.create_connection((address.host, address.port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if address.tls:
            if context is None:
                raise ValueError("a tls:// address needs a client context")
            sock = context.wrap_socket(sock, server_hostname=address.host)
        sock.settimeout(None)
    except BaseException:
        sock.close()
        raise
    return sock


def connect_any(
    masters: MasterList, context: TlsContext | None, timeout: float, first: int = 0
) -> tuple[int, gsocket.socket]:
    """Connect to the first of `masters` that accepts, trying them in turn from index `first`
    (a standby master holds no port open); the index and the socket. The last error when none
    accepts."""
    error: BaseException | None = None
    for step in range(len(masters)):
        index = (first + step) % len(masters)
        try:
            return index, connect(masters[index], context, timeout)
        except (OSError, ValueError) as exc:
            error = exc
    assert error is not None
    raise error
