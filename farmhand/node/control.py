"""The node's local control socket: a unix socket (mode 0600) under the log dir, so
`node.py status|start|stop|restart|reload` work on the machine without the master.

It speaks JSON-RPC like the master's port (the one peer: farmhand/transport.py here,
farmhand/blocking.py in `node.py status`) and serves the very orders the master sends the node:
`proc.list`, `proc.start|stop|restart` (`agent`), `node.reload`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gevent import socket as gsocket
from gevent.server import StreamServer

from farmhand.blocking import Connection
from farmhand.tables import format_table
from farmhand.transport import Handler, Overflow, RpcTransport
from protocol.errors import RpcError

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
CLIENT_TIMEOUT_S = 15.0
# What each `node.py COMMAND` asks the running node.
COMMAND_METHODS = {
    "status": "proc.list",
    "start": "proc.start",
    "stop": "proc.stop",
    "restart": "proc.restart",
    "reload": "node.reload",
}


class ControlLink(RpcTransport):
    """One local client: each request runs in its own greenlet (an order may wait seconds for
    its process to settle)."""

    spawn_requests = True
    internal_error_message = "{method}: internal error (see the node's log)"


class ControlServer:
    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        self._server: StreamServer | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise OSError(f"another node is running: {self.path} answers")
            self.path.unlink()  # left behind by a node that did not exit cleanly
        listener = gsocket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Owner only: the socket can stop every agent on the machine.
        old_umask = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old_umask)
        listener.listen(16)
        self._server = StreamServer(listener, self._serve)
        self._server.start()
        log.info("control socket %s", self.path)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(timeout=1)
            self._server = None
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _serve(self, sock: socket.socket, address: Any) -> None:
        link = ControlLink(
            sock,
            name=f"control socket {self.path}",
            handlers=self.handlers,
            max_line_bytes=MAX_REQUEST_BYTES,
            overflow=Overflow.CUT,
        )
        try:
            link.serve()
        finally:
            link.finish()


def _answers(path: Path) -> bool:
    try:
        request(path, "proc.list", timeout=1.0)
    except RpcError:
        return True  # refused, but something that speaks JSON-RPC is there
    except OSError:
        return False
    return True


def request(
    path: Path,
    method: str,
    params: dict[str, Any] | None = None,
    timeout: float = CLIENT_TIMEOUT_S,
) -> Any:
    """One blocking call (no gevent needed): the result; RpcError when the node refuses,
    OSError when no node answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    connection = Connection(sock, name=f"the node at {path}")
    try:
        return connection.call(method, params, timeout=timeout)
    finally:
        connection.close()


def render_procs(procs: list[dict[str, Any]]) -> str:
    """Like `supervisorctl status`: one line per agent."""
    rows = [
        [
            p["agent"],
            p["state"].upper(),
            "-" if p.get("pid") is None else str(p["pid"]),
            "-" if p.get("uptime_s") is None else _duration(p["uptime_s"]),
            str(p.get("restarts", 0)),
            "-" if p.get("last_exit") is None else str(p["last_exit"]),
            p.get("error", ""),
        ]
        for p in procs
    ]
    return format_table(["agent", "state", "pid", "uptime", "restarts", "last exit", ""], rows)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours}:{minutes:02d}:{seconds:02d}"
