"""Finding 9.2 (and 9.5's console part): one unauthenticated console line must not freeze the
master. Console lines have their own small limit, login is checked before any parsing, and a
hostile line cannot delay another connection's `ping` or get a healthy worker declared dead.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.fakeworker import FakeWorker
from tests.support import ConsoleClient, MasterProcess, RpcClient

from .conftest import admin_key, read_until_closed

pytestmark = pytest.mark.timeout(60)

CONSOLE_LIMIT_BYTES = 4096
# The line that froze the master for 16.9 s: quotes and escapes make shlex crawl.
HOSTILE = b'"a\\"a\\"' * (900_000 // 7)
# A ping on another connection may be slowed by this much at most while the attack runs.
PING_BOUND_S = 0.5


@pytest.fixture
def beating(tmp_path: Path) -> Iterator[MasterProcess]:
    """0.5 s heartbeats: a worker silent for 1.5 s is declared dead."""
    process = MasterProcess(tmp_path / "var", "--heartbeat-s", "0.5")
    yield process
    process.stop()


def test_a_console_line_over_the_console_limit_is_refused_and_says_the_limit(
    master: MasterProcess,
) -> None:
    with ConsoleClient(master.port) as console:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            console.send_raw(b"x" * (CONSOLE_LIMIT_BYTES + 1) + b"\r\n")
        reply, closed = read_until_closed(console.sock)
    assert closed
    assert f"{CONSOLE_LIMIT_BYTES} bytes".encode() in reply, reply
    with ConsoleClient(master.port) as console:
        assert console.command("x" * (CONSOLE_LIMIT_BYTES - 10)).startswith("error: unknown")


class PingProbe:
    """Pings the master on its own connection, as fast as it answers, and keeps the slowest."""

    def __init__(self, port: int, key: str | None = None) -> None:
        self.rpc = RpcClient(port, timeout=60)
        if key is not None:
            self.rpc.call("hello", role="api", name="", proto=1, key=key)
        self.worst_s = 0.0
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.perf_counter()
            assert self.rpc.call("ping") == "pong"
            self.worst_s = max(self.worst_s, time.perf_counter() - began)
            self.count += 1
            time.sleep(0.005)

    def __enter__(self) -> PingProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(70)
        self.rpc.close()


def attack(port: int, line: bytes, connections: int = 3) -> None:
    """Send `line` on several console connections at once and wait until each is answered."""

    def one() -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
            with contextlib.suppress(OSError):
                sock.sendall(line + b"\r\n")
                sock.shutdown(socket.SHUT_WR)
            read_until_closed(sock, timeout=60)

    threads = [threading.Thread(target=one) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(70)


def test_a_hostile_line_delays_no_one_and_kills_no_worker(beating: MasterProcess) -> None:
    worker = FakeWorker(beating.port, "w1", heartbeat_s=0.2)
    try:
        with PingProbe(beating.port) as probe:
            time.sleep(0.3)
            baseline_s = probe.worst_s
            attack(beating.port, HOSTILE)
            # Lines just under the console limit, which do get split: many, on several links.
            for _ in range(5):
                attack(beating.port, HOSTILE[:4000] + b"\r\n" + HOSTILE[:4000])
            time.sleep(0.2)
        assert probe.count > 10
        assert probe.worst_s < baseline_s + PING_BOUND_S, (
            f"a ping waited {probe.worst_s:.3f} s during the attack (before: {baseline_s:.3f} s)"
        )
        with RpcClient(beating.port) as rpc:
            assert rpc.call("clients.list", select="w1")["clients"][0]["online"]
        assert "w1 (id 1) offline" not in beating.log()
    finally:
        worker.close()


def test_before_login_only_login_and_quit_answer(guarded: MasterProcess) -> None:
    with ConsoleClient(guarded.port) as console:
        for line in ("help", "ping", "help clients", "status", "clients --json"):
            assert console.command(line) == "error: log in first: login KEY", line
        assert console.command(f"login {admin_key(guarded)}") == "logged in"
        assert console.command("ping") == "pong"
    with ConsoleClient(guarded.port) as console:
        console.send_raw(b"exit\r\n")
        assert b"bye" in read_until_closed(console.sock)[0]


def test_before_login_nothing_is_parsed(guarded: MasterProcess) -> None:
    with ConsoleClient(guarded.port) as console:
        # A shell-quoting error would mean the line was split before the login check.
        assert console.command('clients "unterminated') == "error: log in first: login KEY"
        assert console.command('login "unterminated').startswith("error: ")
        assert console.command("frobnicate").startswith("error: log in first")


def test_a_hostile_line_before_login_is_cheap(guarded: MasterProcess) -> None:
    with PingProbe(guarded.port, admin_key(guarded)) as probe:
        time.sleep(0.2)
        baseline_s = probe.worst_s
        attack(guarded.port, HOSTILE[:4000])
        attack(guarded.port, HOSTILE)
    assert probe.worst_s < baseline_s + PING_BOUND_S
