"""An operator at a real `telnet` client (docs/protocol.md): the Debian telnet program runs on a
pseudo-terminal, keystrokes go in as a person would type them, and the screen is read back.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import MasterProcess, Program, RpcClient, wait_for

TELNET = Path("/usr/bin/telnet")

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.skipif(
        not TELNET.exists() and not os.environ.get("CI"),
        reason="the telnet client is not installed (`make test` installs it; CI requires it)",
    ),
]


class Terminal:
    """A program on a pseudo-terminal: `type` keystrokes, `expect` what appears on screen."""

    def __init__(self, *argv: str) -> None:
        self.fd, slave = pty.openpty()
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                env={**os.environ, "TERM": "dumb"},
            )
        finally:
            os.close(slave)
        self.screen = ""
        self._seen = 0  # expect() matches only text after the previous match

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def expect(self, pattern: str, timeout: float = 5.0) -> re.Match[str]:
        """Poll the terminal until `pattern` appears after the last match, within `timeout`."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.screen, self._seen)
            if match:
                self._seen = match.end()
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} did not appear; screen:\n{self.screen}")
            if not self._read(remaining):
                match = regex.search(self.screen, self._seen)
                if match:
                    self._seen = match.end()
                    return match
                raise AssertionError(f"terminal closed before {pattern!r}; screen:\n{self.screen}")

    def _read(self, timeout: float) -> bool:
        """Add what the program printed to `screen`; False once the terminal is closed."""
        ready, _, _ = select.select([self.fd], [], [], min(timeout, 0.1))
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the program exited and the pty is gone
            return False
        self.screen += data.decode(errors="replace").replace("\r\n", "\n")
        return bool(data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self.fd)


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    """`master.py --port 0` with its default settings."""
    process = MasterProcess(tmp_path / "var")
    yield process
    process.stop()


@pytest.fixture
def worker(master: MasterProcess, tmp_path: Path) -> Iterator[Program]:
    """A real `worker.py` named e2e-render, online at the master."""
    process = Program(
        "worker.py",
        "--master",
        master.address,
        "--name",
        "e2e-render",
        "--slots",
        "2",
        "--tags",
        "gpu,linux",
        "--work-dir",
        str(tmp_path / "work"),
        log_path=tmp_path / "worker.log",
    )
    with RpcClient(master.port) as rpc:
        wait_for(
            lambda: rpc.call("clients.list", select="online e2e-render")["clients"],
            timeout=10,
            what="the worker to come online",
        )
    yield process
    process.stop()


@pytest.fixture
def telnet(master: MasterProcess) -> Iterator[Terminal]:
    assert TELNET.exists(), "the telnet client must be installed (apt-get install telnet)"
    terminal = Terminal(str(TELNET), "127.0.0.1", str(master.port))
    yield terminal
    terminal.close()


def enabled_over_rpc(master: MasterProcess, name: str) -> bool:
    with RpcClient(master.port) as rpc:
        return rpc.call("clients.list", select=name)["clients"][0]["enabled"]


def test_operator_session_in_real_telnet(
    master: MasterProcess, worker: Program, telnet: Terminal
) -> None:
    telnet.expect(r"farmhand master \S+ on 127\.0\.0\.1:\d+\. Type 'help'")
    telnet.expect(r"farmhand> ")

    telnet.type("clients\r")
    row = telnet.expect(
        r"\ne2e-render +worker +\S+ +idle +yes +now +2 +gpu,linux +0 +-\n"
    )  # SCHEDULE: none
    assert row
    telnet.expect(r"1 client \(1 online, 0 disabled\)\nfarmhand> ")

    telnet.type("disable e2e-*\r")
    telnet.expect(r"disabled 1 client: e2e-render\nfarmhand> ")
    assert not enabled_over_rpc(master, "e2e-render")

    telnet.type("clients --json\r")
    telnet.expect(r'\{"clients":\[\{.*"name":"e2e-render".*"enabled":false.*\}\]\}\nfarmhand> ')

    telnet.type("enable e2e-render\r")
    telnet.expect(r"enabled 1 client: e2e-render\nfarmhand> ")
    assert enabled_over_rpc(master, "e2e-render")

    telnet.type("quit\r")
    telnet.expect(r"bye\n")
    assert telnet.proc.wait(5) is not None
    assert master.proc.poll() is None, "the master exited with the session"
    assert worker.proc.poll() is None


def test_typing_mistakes_in_real_telnet(master: MasterProcess, telnet: Terminal) -> None:
    telnet.expect(r"farmhand> ")
    telnet.type("clinets\r")
    telnet.expect(r"error: unknown command 'clinets' — did you mean 'clients'\?.*\nfarmhand> ")
    telnet.type('disable "oops\r')
    telnet.expect(r"error: .*quot.*\nfarmhand> ")
    telnet.type("ping\r")
    telnet.expect(r"\npong\nfarmhand> ")
    telnet.type("exit\r")
    telnet.expect(r"bye\n")
    assert telnet.proc.wait(5) is not None
    assert master.proc.poll() is None
