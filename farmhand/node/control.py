"""The node's local control socket: a unix socket (mode 0600) under the log dir, so
`node.py status|start|stop|restart|reload` work on the machine without the master.

Wire format: one JSON object per line each way. Request `{"cmd": "status"}` or
`{"cmd": "restart", "agent": "render-01"}`; reply `{"ok": true, "result": …}` or
`{"ok": false, "error": "…"}`. The server knows nothing of the commands: `handle(request)` does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gevent import socket as gsocket
from gevent.server import StreamServer

from protocol.errors import RpcError

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
CLIENT_TIMEOUT_S = 15.0


class ControlServer:
    def __init__(self, path: Path, handle: Callable[[dict[str, Any]], Any]) -> None:
        self.path = path
        self.handle = handle
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
        with contextlib.closing(sock), sock.makefile("rwb") as stream:
            while line := stream.readline(MAX_REQUEST_BYTES + 1):
                stream.write(json.dumps(self._answer(line)).encode() + b"\n")
                stream.flush()

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
        except ValueError as exc:
            return {"ok": False, "error": f"bad request: {exc}"}
        try:
            return {"ok": True, "result": self.handle(request)}
        except RpcError as exc:
            return {"ok": False, "error": exc.message}
        except Exception:
            log.exception("control request %r failed", request)
            return {"ok": False, "error": "internal error (see the node's log)"}


def _answers(path: Path) -> bool:
    try:
        request(path, {"cmd": "status"}, timeout=1.0)
    except OSError:
        return False
    return True


def request(path: Path, message: dict[str, Any], timeout: float = CLIENT_TIMEOUT_S) -> Any:
    """One blocking request (no gevent needed): the result, or RuntimeError with the error."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(message).encode() + b"\n")
        with sock.makefile("rb") as stream:
            line = stream.readline()
    if not line:
        raise OSError("the node closed the control socket without answering")
    reply = json.loads(line)
    if not reply.get("ok"):
        raise RuntimeError(reply.get("error") or "failed")
    return reply.get("result")


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
    headers = ["AGENT", "STATE", "PID", "UPTIME", "RESTARTS", "LAST EXIT", ""]
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [
            headers,
            *rows,
        ]
    ]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours}:{minutes:02d}:{seconds:02d}"
