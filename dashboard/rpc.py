"""The dashboard's JSON-RPC client for the master: one connection, many concurrent calls.

The connection is the one transport (farmhand/transport.py): it matches replies to waiting
calls and hands `event` notifications to a callback. When the connection drops, waiting calls
fail with `MasterUnavailable` and the client reconnects with the one backoff, says hello again
and re-subscribes to its topics.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event

from farmhand.options import MasterAddress, MasterList, describe_tls_error, key_in_clear
from farmhand.tls import client_context, connect_any
from farmhand.transport import Overflow, RpcTransport
from protocol.backoff import Backoff
from protocol.errors import RpcError
from protocol.framing import MAX_ANSWER_LINE_BYTES
from protocol.peer import PeerClosed
from protocol.version import PROTOCOL_VERSION

__all__ = ["MasterClient", "MasterUnavailable", "RpcError"]

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0
CALL_TIMEOUT_S = 10.0
CONNECT_WAIT_S = 2.0  # how long a call waits for a connection that is being re-established
CONNECT_TIMEOUT_S = 5.0
SEND_QUEUE_BYTES = 1 << 20

EventCallback = Callable[[str, Any], None]
StateCallback = Callable[[bool], None]


class MasterUnavailable(Exception):
    """The master cannot be reached now (down, restarting, or too slow to answer)."""


class MasterClient:
    """A reconnecting JSON-RPC connection to the master, shared by every request greenlet."""

    def __init__(
        self,
        address: MasterAddress | MasterList,
        key: str | None = None,
        name: str = "dashboard",
        ca: Path | None = None,
        on_event: EventCallback | None = None,
        on_state: StateCallback | None = None,
        call_timeout_s: float = CALL_TIMEOUT_S,
    ):
        # Standby masters: tried in turn, from the one that last worked.
        self.addresses = MasterList.of(address)
        self.address = self.addresses[0]
        self.tls = client_context(ca) if any(a.tls for a in self.addresses) else None
        self.key = key
        self.name = name
        self.on_event = on_event
        self.on_state = on_state
        self.call_timeout_s = call_timeout_s
        self.topics: set[str] = set()
        self.connected = False
        self.last_error = ""
        self._link: RpcTransport | None = None
        self._up = Event()
        self._stopping = False
        self._loop: gevent.Greenlet | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._loop is None:
            self._loop = gevent.spawn(self._run)

    def stop(self) -> None:
        self._stopping = True
        if self._link is not None:
            self._link.close("dashboard stopping")
        if self._loop is not None:
            self._loop.kill(block=True, timeout=2)
            self._loop = None

    def wait_connected(self, timeout: float) -> bool:
        return bool(self._up.wait(timeout))

    # -- calls -----------------------------------------------------------------------------------
    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        on_behalf_of: str | None = None,
        **kw: Any,
    ) -> Any:
        """Call a method and return its result; RpcError or MasterUnavailable otherwise.

        `on_behalf_of` names the dashboard user who acts, for the master's audit log.
        """
        if not self._up.wait(CONNECT_WAIT_S):
            raise MasterUnavailable(self.last_error or "the master is not connected")
        return self._request(method, {**(params or {}), **kw}, on_behalf_of)

    def subscribe(self, topics: list[str]) -> None:
        """Add topics; they are (re-)subscribed on every connection."""
        new = [topic for topic in topics if topic not in self.topics]
        self.topics.update(new)
        if new and self.connected:
            self._send_quietly("subscribe", {"topics": new})

    def unsubscribe(self, topics: list[str]) -> None:
        gone = [topic for topic in topics if topic in self.topics]
        self.topics.difference_update(gone)
        if gone and self.connected:
            self._send_quietly("unsubscribe", {"topics": gone})

    def _send_quietly(self, method: str, params: dict[str, Any]) -> None:
        def send() -> None:
            try:
                self._request(method, params)
            except (MasterUnavailable, RpcError) as exc:
                log.warning("%s %s failed: %s", method, params, exc)

        gevent.spawn(send)

    def _request(self, method: str, params: dict[str, Any], on_behalf_of: str | None = None) -> Any:
        link = self._link
        if link is None or link.closed:
            raise MasterUnavailable(self.last_error or "the master is not connected")
        try:
            return link.call(method, params, self.call_timeout_s, on_behalf_of)
        except gevent.Timeout:
            raise MasterUnavailable(f"{method}: no answer within {self.call_timeout_s}s") from None
        except PeerClosed:
            # Our end of the link, not an answer of the master's (which would be an RpcError).
            reason = link.close_reason or "connection lost"
            raise MasterUnavailable(f"{method}: {reason}") from None

    # -- the connection loop ---------------------------------------------------------------------
    def _run(self) -> None:
        backoff = Backoff(BACKOFF_START_S, BACKOFF_MAX_S)
        while not self._stopping:
            link: RpcTransport | None = None
            reader: gevent.Greenlet | None = None
            try:
                index, sock = connect_any(
                    self.addresses,
                    self.tls,
                    CONNECT_TIMEOUT_S,
                    self.addresses.index(self.address),
                )
                self.address = self.addresses[index]
                if self.key and key_in_clear(self.address, sock):
                    log.warning(
                        "sending the key to %s in plaintext across the network: use "
                        "--master tls://HOST:TLS_PORT",
                        self.address,
                    )
                link = RpcTransport(
                    sock,
                    name=f"master {self.address}",
                    handlers={"event": self._event},
                    max_line_bytes=MAX_ANSWER_LINE_BYTES,
                    send_queue_bytes=SEND_QUEUE_BYTES,
                    overflow=Overflow.WAIT,
                )
                self._link = link
                reader = gevent.spawn(link.serve)
                self._handshake()
            except (OSError, ValueError, RpcError, MasterUnavailable) as exc:
                self._drop(link, reader)
                detail = describe_tls_error(exc) if isinstance(exc, ssl.SSLError) else exc
                self.last_error = f"master {self.address}: {detail}"
                # A refused hello (no or bad key) or an untrusted certificate needs the
                # operator; a master that is down does not.
                needs_operator = isinstance(exc, RpcError | ssl.SSLCertVerificationError)
                report = log.error if needs_operator else log.debug
                delay = backoff.next_delay()
                report("connect failed: %s; retrying in %.1fs", self.last_error, delay)
                gevent.sleep(delay)
                continue
            backoff.reset()
            self._set_connected(True)
            log.info("connected to the master at %s", self.address)
            reader.join()
            self.last_error = f"master {self.address}: {link.close_reason}"
            self._drop(link, reader)
            self._set_connected(False)
            if not self._stopping:
                log.warning("lost the master connection: %s", self.last_error)
                gevent.sleep(BACKOFF_START_S)

    def _handshake(self) -> None:
        hello: dict[str, Any] = {"role": "api", "name": self.name, "proto": PROTOCOL_VERSION}
        if self.key:
            hello["key"] = self.key
        self._request("hello", hello)
        if self.topics:
            self._request("subscribe", {"topics": sorted(self.topics)})

    def _event(self, params: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(params.get("topic", ""), params.get("data"))
            except Exception:
                log.exception("event handler failed for %s", params.get("topic"))

    def _drop(self, link: RpcTransport | None, reader: gevent.Greenlet | None) -> None:
        if self._link is link:
            self._link = None
        if link is not None:
            link.close("dashboard reconnecting")
        if reader is not None:
            reader.kill()
        if link is not None:
            link.finish()

    def _set_connected(self, up: bool) -> None:
        self.connected = up
        if up:
            self._up.set()
        else:
            self._up.clear()
        if self.on_state is not None:
            self.on_state(up)
