"""Test support: the real programs as subprocesses, and small blocking clients for both
dialects of the master's port. Tests wait by polling (`wait_for`), never by fixed sleeps.
The JSON-RPC client frames and encodes with protocol/ (framing, jsonrpc) like every peer.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protocol.framing import LineDecoder
from protocol.jsonrpc import encode_notification, encode_request, loads

ROOT = Path(__file__).resolve().parent.parent
PROMPT = b"farmhand> "
# What a test reads may be large (a list of every client): far above the master's own limit.
TEST_MAX_LINE_BYTES = 256 << 20


def wait_for(
    condition: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> Any:
    """Poll until condition() is truthy and return its value; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Program:
    """A farmhand program (`master.py`, `worker.py`, …) run as a child process."""

    def __init__(self, script: str, *args: str, log_path: Path, env: dict[str, str] | None = None):
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / script), *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait: the exit status."""
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()
        self._log.close()


class MasterProcess(Program):
    """`python master.py --port 0`; `.port` (and `.tls_port` with --tls-port) is read from its
    first line of output."""

    def __init__(
        self,
        data_dir: Path,
        *args: str,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
    ):
        data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            "master.py",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--log-level",
            "debug",
            *args,
            log_path=log_path or data_dir / "master.log",
            env=env,
        )
        self.data_dir = data_dir
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        match = re.search(r"listening on (\S+):(\d+)", line)
        if not match:
            self.kill()
            raise AssertionError(f"master did not start: {line!r}\n{self.log()}")
        self.host, self.port = match.group(1), int(match.group(2))
        tls = re.search(r"TLS on tls://(\S+):(\d+)", line)
        self.tls_port = int(tls.group(2)) if tls else None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class RpcClient:
    """A blocking JSON-RPC client. Messages are read as the master sent them (dicts), so a
    test sees the exact error objects; `send_raw` sends deliberately broken bytes.
    Notifications that arrive meanwhile are kept in `events`, orders in `requests`."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        timeout: float = 10.0,
        sock: socket.socket | None = None,
        source: str | None = None,
    ):
        """Connects to host:port, or uses `sock` (e.g. a TLS connection) when given. `source`
        picks the local address, e.g. 127.0.0.2 to be another loopback peer host."""
        source_address = (source, 0) if source else None
        self.sock = sock or socket.create_connection((host, port), timeout, source_address)
        self.decoder = LineDecoder(TEST_MAX_LINE_BYTES)
        self.events: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_message(self) -> dict[str, Any]:
        while (line := self.decoder.next_line()) is None:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the master closed the connection")
            self.decoder.feed(chunk)
        message: dict[str, Any] = loads(line)
        return message

    def read_reply(self) -> dict[str, Any]:
        """The next response, keeping notifications and requests that arrive before it."""
        while True:
            message = self.read_message()
            if "method" not in message:
                return message
            (self.requests if "id" in message else self.events).append(message)

    def request(self, method: str, **params: Any) -> dict[str, Any]:
        """The whole response object (result or error)."""
        request_id = next(self._ids)
        self.send_raw(encode_request(request_id, method, params))
        reply = self.read_reply()
        assert reply.get("id") == request_id, reply
        return reply

    def call(self, method: str, **params: Any) -> Any:
        reply = self.request(method, **params)
        if "error" in reply:
            raise RpcFailure(reply["error"])
        return reply["result"]

    def notify(self, method: str, **params: Any) -> None:
        self.send_raw(encode_notification(method, params))

    def wait_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first `event` notification's params that satisfy predicate."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if predicate(event["params"]):
                    self.events.remove(event)
                    return event["params"]
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                message = self.read_message()
            except TimeoutError:
                raise AssertionError("timed out waiting for an event") from None
            finally:
                self.sock.settimeout(10.0)
            (self.requests if "id" in message and "method" in message else self.events).append(
                message
            )

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True if the master closes the connection within timeout (data read is dropped)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                if not self.sock.recv(65536):
                    return True
        except TimeoutError:
            return False
        except ConnectionError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RpcFailure(Exception):
    def __init__(self, error: dict[str, Any]):
        super().__init__(error.get("message"))
        self.error = error
        self.code = error.get("code")
        self.reason = (error.get("data") or {}).get("reason")


def agent(port: int, name: str, role: str = "worker", **params: Any) -> RpcClient:
    """A connection that has said hello as an agent."""
    client = RpcClient(port)
    client.call("hello", role=role, name=name, proto=1, **params)
    return client


class ConsoleClient:
    """A raw-socket console session: `command(line)` returns the text up to the next prompt."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.banner = self.read_until(PROMPT).decode()

    def read_until(self, marker: bytes) -> bytes:
        data = b""
        while not data.endswith(marker):
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before {marker!r}; got {data!r}")
            data += chunk
        return data[: -len(marker)]

    def read_all(self) -> bytes:
        """Everything until the master closes the connection."""
        data = b""
        while chunk := self.sock.recv(65536):
            data += chunk
        return data

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: str, ending: bytes = b"\r\n") -> str:
        self.sock.sendall(line.encode() + ending)
        return self.read_until(PROMPT).decode().replace("\r\n", "\n").rstrip("\n")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def farmhand(
    *args: str, master: MasterProcess | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The `farmhand` command as a real process (`python -m farmhand.cli`), optionally pointed
    at `master`."""
    flags = ["--master", master.address] if master is not None else []
    return subprocess.run(
        [sys.executable, "-m", "farmhand.cli", *flags, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
