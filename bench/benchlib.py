"""What the benches share: a master subprocess on port 0, a blocking JSON-RPC client (the one
peer, farmhand/blocking.py), stopping child processes, and percentiles. Benches print figures;
they are not tests."""

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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from farmhand.blocking import Connection  # noqa: E402
from protocol.errors import RpcError  # noqa: E402

LISTENING = re.compile(rb"farmhand master listening on (\S+):(\d+)")
MASTER_START_TIMEOUT_S = 15.0
CALL_TIMEOUT_S = 60.0


class BenchError(Exception):
    """The bench could not measure (a process died, a timeout): reported, exit 1."""


class RpcClient:
    """A blocking JSON-RPC connection (farmhand/blocking.py, the one peer); notifications
    (events) that arrive meanwhile are kept for `next_event`."""

    def __init__(self, host: str, port: int) -> None:
        sock = socket.create_connection((host, port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connection = Connection(sock, name=f"master {host}:{port}")
        self.call("ping")  # the master picks the dialect from the first byte, within 0.2 s

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return self.call_sized(method, params)[0]

    def call_sized(self, method: str, params: dict[str, Any] | None = None) -> tuple[Any, int]:
        """The result and the bytes received meanwhile (the answer's size, to measure it)."""
        before = self.connection.bytes_received
        try:
            result = self.connection.call(method, params or {}, timeout=CALL_TIMEOUT_S)
        except RpcError as exc:
            raise BenchError(f"{method}: {exc.to_dict()}") from None
        except OSError as exc:
            raise BenchError(f"{method}: {exc}") from None
        return result, self.connection.bytes_received - before

    def next_event(self) -> dict[str, Any]:
        """The params of the next `event` notification: `topic` and `data`."""
        note = self.connection.next_notification(timeout=CALL_TIMEOUT_S)
        if note is None:
            raise BenchError(f"no event within {CALL_TIMEOUT_S:.0f} s")
        return note.params

    def close(self) -> None:
        self.connection.close()


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
