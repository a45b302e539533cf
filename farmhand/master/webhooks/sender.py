"""Webhook POSTs: the body's signature and the HTTP exchange, over gevent sockets, keep-alive.

The master is gevent without monkey-patching, so the stdlib's http.client would block the hub on
a plain socket: the connection classes here open a gevent socket (and wrap it with gevent's ssl
for https://) and http.client does the rest. Every exchange has a connect/read timeout and an
overall deadline, so a slow endpoint holds one delivery greenlet for at most that long.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import gevent
import gevent.socket
import gevent.ssl

CONNECT_TIMEOUT_S = 5.0
DEADLINE_S = 10.0
USER_AGENT = "farmhand-webhooks/1"
# The answer's body is read (so the connection ends cleanly) but only this much is kept.
MAX_ERROR_BODY = 200


def signature(secret: str, body: bytes) -> str:
    """The X-Farmhand-Signature header value: sha256=HEX of HMAC-SHA256(secret, body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_url(url: str) -> str:
    """The URL if it is http:// or https:// with a host; ValueError (one line) otherwise."""
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise ValueError(f"bad webhook URL {url!r}: no spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad webhook URL {url!r}: expected http://HOST[:PORT]/PATH or https://…")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"bad webhook URL {url!r}: the port is not a number 1-65535") from None
    return url


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt went: a status code (None: no HTTP answer), latency, error line."""

    status: int | None
    latency_ms: float
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _Connection(http.client.HTTPConnection):
    def connect(self) -> None:
        self.sock = gevent.socket.create_connection((self.host, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _TlsConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int | None, timeout: float) -> None:
        self._gevent_context = gevent.ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._gevent_context)

    def connect(self) -> None:
        sock = gevent.socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._gevent_context.wrap_socket(sock, server_hostname=self.host)


Key = tuple[str, str, int | None]
# Idle keep-alive connections kept per endpoint (scheme, host, port).
MAX_IDLE_PER_ENDPOINT = 2
# What a server's silent close of an idle keep-alive connection looks like on reuse.
_STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Sender:
    """POSTs over keep-alive connections: one TCP (and TLS) handshake per endpoint, not per
    delivery, where the endpoint allows it."""

    def __init__(self) -> None:
        self._idle: dict[Key, list[http.client.HTTPConnection]] = {}

    def post(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        """POST `body` to `url`; never raises for network trouble (the Outcome says what)."""
        parts = urlsplit(url)
        key: Key = (parts.scheme, parts.hostname or "", parts.port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        idle = self._idle.get(key)
        began = time.perf_counter()
        if idle:
            connection = idle.pop()
            try:
                return self._exchange(key, connection, path, headers, body, began)
            except _STALE_CONNECTION:
                began = time.perf_counter()  # closed while idle: once more, on a new one
        try:
            connection = _connect(key)
            return self._exchange(key, connection, path, headers, body, began)
        except (*_STALE_CONNECTION, http.client.HTTPException, ValueError) as exc:
            return Outcome(None, _ms_since(began), _describe(exc))

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    def _exchange(
        self,
        key: Key,
        connection: http.client.HTTPConnection,
        path: str,
        headers: dict[str, str],
        body: bytes,
        began: float,
    ) -> Outcome:
        keep = False
        try:
            with gevent.Timeout(DEADLINE_S):
                connection.request(
                    "POST",
                    path,
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "User-Agent": USER_AGENT,
                        **headers,
                    },
                )
                response = connection.getresponse()
                answer = response.read()
            keep = not response.will_close
            latency_ms = _ms_since(began)
            if 200 <= response.status < 300:
                return Outcome(response.status, latency_ms, None)
            text = answer[:MAX_ERROR_BODY].decode("utf-8", "replace").strip()
            reason = f"HTTP {response.status} {response.reason}".strip()
            return Outcome(response.status, latency_ms, f"{reason}: {text}" if text else reason)
        except gevent.Timeout:
            return Outcome(None, _ms_since(began), f"no answer in {DEADLINE_S:g} s")
        except _STALE_CONNECTION:
            raise
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(None, _ms_since(began), _describe(exc))
        finally:
            idle = self._idle.setdefault(key, [])
            if keep and len(idle) < MAX_IDLE_PER_ENDPOINT:
                idle.append(connection)
            else:
                connection.close()


def _connect(key: Key) -> http.client.HTTPConnection:
    scheme, host, port = key
    if scheme == "https":
        return _TlsConnection(host, port, CONNECT_TIMEOUT_S)
    return _Connection(host, port, timeout=CONNECT_TIMEOUT_S)


def _ms_since(began: float) -> float:
    return (time.perf_counter() - began) * 1000.0


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(": ")
