"""What the benches share: a master subprocess on port 0, a blocking JSON-RPC client, stopping
child processes, and percentiles. Benches print figures; they are not tests."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
LISTENING = re.compile(rb"farmhand master listening on (\S+):(\d+)")
MASTER_START_TIMEOUT_S = 15.0
RECV_BYTES = 256 * 1024


class BenchError(Exception):
    """The bench could not measure (a process died, a timeout): reported, exit 1."""


class RpcClient:
    """A blocking JSON-RPC connection; notifications (events) that arrive are kept in `events`."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.call("ping")  # the master picks the dialect from the first byte, within 0.2 s

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\n")) < 0:
            chunk = self.sock.recv(RECV_BYTES)
            if not chunk:
                raise BenchError("master closed the connection")
            self.buf += chunk
        line, self.buf = self.buf[: end + 1], self.buf[end + 1 :]
        return line

    def _message(self) -> dict[str, Any]:
        message: dict[str, Any] = orjson.loads(self._line())
        return message

    def call_raw(self, method: str, params: dict[str, Any] | None = None) -> bytes:
        """The reply line as received (to measure its size); events before it are kept."""
        self.next_id += 1
        request = {"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}}
        self.sock.sendall(orjson.dumps(request, option=orjson.OPT_APPEND_NEWLINE))
        while True:
            line = self._line()
            if b'"method"' in line[:64] and b'"id"' not in line[:64]:
                self.events.append(orjson.loads(line))
                continue
            return line

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        reply = orjson.loads(self.call_raw(method, params))
        if "error" in reply:
            raise BenchError(f"{method}: {reply['error']}")
        return reply["result"]

    def next_event(self) -> dict[str, Any]:
        return self.events.pop(0) if self.events else self._message()

    def close(self) -> None:
        self.sock.close()


def read_line(stream: Any, timeout: float, what: str) -> bytes:
    """One line from a child's stdout pipe, within `timeout` seconds."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    line = b""
    deadline = time.monotonic() + timeout
    try:
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(timeout=left):
                raise BenchError(f"timed out waiting for {what}")
            chunk = os.read(stream.fileno(), 1)  # byte-wise: never read past the line
            if not chunk:
                raise BenchError(f"{what}: the process exited")
            line += chunk
    finally:
        selector.close()
    return line


def start_master(
    data_dir: Path,
    started: list[subprocess.Popen[bytes]],
    *flags: str,
    script: Path = ROOT / "master.py",
) -> tuple[subprocess.Popen[bytes], str, int]:
    """`master.py --port 0` with `flags`; returns the process, host and port it listens on."""
    argv = [sys.executable, str(script), "--port", "0", "--data-dir", str(data_dir)]
    argv += ["--log-level", "warning", *flags]
    master = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    started.append(master)
    line = read_line(master.stdout, MASTER_START_TIMEOUT_S, "the master's listening line")
    match = LISTENING.search(line)
    if match is None:
        raise BenchError(f"master did not start (exit {master.poll()}): {line!r}")
    return master, match.group(1).decode(), int(match.group(2))


def stop_all(started: list[subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    """Children with a stdin pipe exit when it closes; the others get SIGTERM. The last
    started stops first (workers before the master)."""
    for proc in reversed(started):
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        elif proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in started:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    started.clear()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]
