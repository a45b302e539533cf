"""The agent runtime every agent program shares: connect, hello, heartbeat, take orders, and
reconnect with the one backoff (protocol/backoff.py: jittered, exponential) whenever the master
goes away. The link is the one JSON-RPC transport (farmhand/agent/link.py).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event

from farmhand.options import MasterAddress, MasterList, describe_tls_error, key_in_clear
from farmhand.tls import client_context, connect_any
from protocol.backoff import AGENT_RECONNECT_MAX_S, Backoff
from protocol.errors import RpcError
from protocol.version import PROTOCOL_VERSION, SOFTWARE_VERSION

from .hostinfo import host_info
from .link import MasterLink, OrderHandler

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0


class AgentRuntime:
    def __init__(
        self,
        *,
        master: MasterAddress | MasterList,
        name: str,
        role: str,
        key: str | None = None,
        ca: Path | None = None,
        info: dict[str, Any] | None = None,
        handlers: dict[str, OrderHandler] | None = None,
        running: Callable[[], list[str]] | None = None,
        hello_params: Callable[[], dict[str, Any]] | None = None,
        on_connected: Callable[[MasterLink], None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        # Standby masters: each (re)connect tries them in turn, from the one that last worked.
        self.masters = MasterList.of(master)
        self.master = self.masters[0]
        # Built once: a bad CA file fails here (ValueError), not at every reconnect.
        self.tls = client_context(ca) if any(m.tls for m in self.masters) else None
        self.name = name
        self.role = role
        self.key = key
        self.info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": SOFTWARE_VERSION,
            **(info or {}),
        }
        # Host facts (CPU count, memory, load): in hello, then with every heartbeat.
        self.host_info: Callable[[], dict[str, Any]] = host_info
        self.handlers = dict(handlers or {})
        # Attempt ids running now, sent with every heartbeat.
        self.running = running or (lambda: [])
        # Extra hello params, computed at each (re)connect (a worker sends its `attempts`).
        self.hello_params = hello_params or (lambda: {})
        # Runs in its own greenlet after each successful hello (a worker re-sends its reports).
        self.on_connected = on_connected
        self.backoff = backoff or Backoff(maximum_s=AGENT_RECONNECT_MAX_S)
        self.link: MasterLink | None = None
        self.connected = Event()
        self.hello_result: dict[str, Any] = {}
        self._stopping = Event()
        self._warned_key_in_clear = False

    def run(self) -> None:
        """Stay connected until stop() is called."""
        while not self._stopping.is_set():
            try:
                self._session()
            except ssl.SSLError as exc:
                # A certificate that is not trusted needs the operator: an error, not a warning.
                log.error("master %s: %s", self.master, describe_tls_error(exc))
            except (OSError, RpcError, gevent.Timeout) as exc:
                log.warning("master %s: %s", self.master, _describe(exc))
            except ValueError as exc:  # a tls:// address without a client context
                log.error("master %s: %s", self.master, exc)
            if self._stopping.is_set():
                break
            delay = self.backoff.next_delay()
            log.info("reconnecting in %.1fs", delay)
            self._stopping.wait(delay)
        log.info("agent %s stopped", self.name)

    def stop(self) -> None:
        self._stopping.set()
        if self.link is not None:
            self.link.close("agent stopping")

    def _session(self) -> None:
        index, sock = connect_any(
            self.masters, self.tls, CONNECT_TIMEOUT_S, self.masters.index(self.master)
        )
        self.master = self.masters[index]
        if self.key and not self._warned_key_in_clear and key_in_clear(self.master, sock):
            self._warned_key_in_clear = True
            log.warning(
                "sending the key to %s in plaintext across the network: anyone on the path can "
                "read it; use --master tls://HOST:TLS_PORT",
                self.master,
            )
        link = MasterLink(sock, self.handlers, name=f"master {self.master}")
        self.link = link
        reader = gevent.spawn(link.serve)
        heartbeats: gevent.Greenlet | None = None
        try:
            params: dict[str, Any] = {
                "role": self.role,
                "name": self.name,
                "proto": PROTOCOL_VERSION,
                "info": {**self.info, "host_info": self.host_info()},
            }
            if self.key:
                params["key"] = self.key
            params.update(self.hello_params())
            self.hello_result = link.call("hello", params)
            self.backoff.reset()
            log.info(
                "connected to %s as %s (client %s, %s)",
                self.master,
                self.name,
                self.hello_result.get("client_id"),
                "enabled" if self.hello_result.get("enabled") else "disabled",
            )
            self.connected.set()
            if self.on_connected is not None:
                gevent.spawn(self.on_connected, link)
            heartbeats = gevent.spawn(
                self._beat, link, float(self.hello_result.get("heartbeat_s") or 5.0)
            )
            reader.join()
            if not self._stopping.is_set():
                log.warning("lost the connection to the master")
        finally:
            self.connected.clear()
            if heartbeats is not None:
                heartbeats.kill()
            link.close("agent disconnecting")
            reader.kill()
            link.finish()
            self.link = None

    def _beat(self, link: MasterLink, interval_s: float) -> None:
        while not link.closed:
            gevent.sleep(interval_s)
            try:
                link.notify("heartbeat", {"running": self.running(), "host": self.host_info()})
            except RpcError:
                return


def stop_on_signals(stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT call `stop` in a greenlet of its own: signal handlers run in the hub,
    which must not block."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, gevent.spawn, stop)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RpcError):
        return f"refused: {exc.message}"
    if isinstance(exc, gevent.Timeout):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
