"""Fuzzing the console (issue 9, the attack suite): random command lines made of the real
command names, odd arguments, quotes and `--json`/`--`, with telnet IAC noise between the bytes.
The oracle: every line gets one printable answer (never "internal error", never a traceback in
the log); before login every line but `login`/`quit` gets "log in first". In-process for speed,
plus one real-socket run against a master process.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from farmhand.master.console import ALIASES, COMMANDS
from farmhand.master.console.shell import LOGIN_FIRST, ConsoleConnection
from farmhand.master.session import Session
from protocol.framing import LineTooLong
from protocol.httpsniff import looks_like_http
from protocol.telnet import ConsoleInput, Line
from tests.support import PROMPT, ConsoleClient, MasterProcess

from .conftest import read_until_closed
from .inprocess import ErrorLog, Farm, inprocess_farm

pytestmark = pytest.mark.timeout(120)

EXAMPLES = int(os.environ.get("FARMHAND_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="FARMHAND_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
IAC = 255
# Telnet commands a client may send anywhere: NOP, negotiation with an option, a whole
# subnegotiation, an escaped 255, Are-You-There.
IAC_NOISE = st.sampled_from(
    [
        bytes([IAC, 241]),
        bytes([IAC, 251, 1]),
        bytes([IAC, 253, 3]),
        bytes([IAC, 250, 24, 0, ord("x"), IAC, 240]),
        bytes([IAC, 246]),
    ]
)
WORDS = st.sampled_from(
    [
        *COMMANDS,
        *ALIASES,
        "--json",
        "--",
        "all",
        "online",
        "role=worker",
        "tag=gpu",
        "fuzz-*",
        "1",
        "0",
        "-1",
        "99999999999999999999",
        "9" * 400,
        "¹",  # str.isdigit() says yes, int() says no
        "٣",
        "frames=1-3",
        "chunk=0",
        "priority=101",
        "tags=,",
        "list",
        "create",
        "revoke",
        "add",
        "assign",
        '"',
        "'",
        '"quoted word"',
        "\\",
        "é",
        "*" * 30,
        "=",
    ]
) | st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF), max_size=12)
LINES = st.lists(WORDS, min_size=1, max_size=8).map(" ".join)


def with_noise(line: str, noise: list[bytes], cuts: list[int]) -> bytes:
    """The line's bytes with telnet commands put in at the cut points, then CR LF."""
    data = line.encode()
    out = bytearray()
    previous = 0
    for cut, extra in zip(sorted(c % (len(data) + 1) for c in cuts), noise, strict=False):
        out += data[previous:cut] + extra
        previous = cut
    return bytes(out + data[previous:] + b"\r\n")


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    with inprocess_farm(tmp_path_factory.mktemp("console-fuzz")) as farm:
        farm.call(farm.sessions["admin"], "jobs.submit", {"name": "seed", "argv": ["true"]})
        yield farm


@pytest.fixture
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


def console(farm: Farm, trusted: bool) -> ConsoleConnection:
    session = Session("127.0.0.1" if trusted else "10.1.2.3", 3, "console", trusted=trusted)
    connection = ConsoleConnection(socket.socket(), session, farm.services, farm.api)
    return connection


def lines_of(data: bytes) -> list[str]:
    reader = ConsoleInput(4096)
    try:
        return [event.text for event in reader.feed(data) if isinstance(event, Line)]
    except LineTooLong:
        return []


@FUZZ
@given(line=LINES, noise=st.lists(IAC_NOISE, max_size=4), cuts=st.lists(st.integers(0, 200)))
def test_any_line_gets_one_answer_and_nothing_breaks_inside(
    farm: Farm, error_log: ErrorLog, line: str, noise: list[bytes], cuts: list[int]
) -> None:
    for text in lines_of(with_noise(line, noise, cuts)):
        if looks_like_http(text):
            continue  # the connection is closed before such a line runs
        for trusted in (True, False):
            connection = console(farm, trusted)
            answer = connection.execute(text)
            connection.sock.close()
            assert isinstance(answer, str)
            assert "internal error" not in answer, (text, answer)
            first = text.split()[0].lower() if text.split() else ""
            if not trusted and first not in ("login", "quit", "exit") and text.strip():
                assert answer == LOGIN_FIRST, (text, answer)
    assert not error_log.records, f"{line!r} logged:\n{error_log.text()}"


def test_random_bytes_with_iac_noise_on_a_real_socket(master: MasterProcess) -> None:
    """Whatever arrives, the master answers each line and keeps serving."""
    blobs = [
        bytes([IAC, 251, 1, IAC, 253, 3]) + b"clients --json\r\n",
        bytes(b for b in range(256) if b not in (3, 4)) + b"\r\n",  # not Ctrl-C, Ctrl-D
        b"\xff\xff\xff\xfa" + b"x" * 100 + b"\xff\xf0jobs\r\n",
        b"submit a -- \xff\xf1echo \xc3\x28\r\n",
        b"\r\0\r\n\n\r" * 50,
        b"\x1b[A\x1b[B\x08\x08\x7fping\r\n",
    ]
    for blob in blobs:
        with ConsoleClient(master.port) as client:
            client.send_raw(blob + b"ping\r\n")
            client.sock.shutdown(socket.SHUT_WR)
            reply, closed = read_until_closed(client.sock)
            assert closed
            assert b"pong" in reply, (blob, reply)
            assert b"internal error" not in reply
    with ConsoleClient(master.port) as client:
        assert client.command("ping") == "pong"
    assert "Traceback" not in master.log()
    assert PROMPT  # the prompt marker is the one the support client waits for


ODD_WORDS = ["¹", "٣", "9" * 400, "-1", "0", "''", '""', "--json", "--", "=", "a=", "=b", "é" * 50]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_with_odd_words_in_every_place(
    farm: Farm, error_log: ErrorLog, name: str
) -> None:
    connection = console(farm, trusted=True)
    failures = []
    for word in ODD_WORDS:
        for line in (
            f"{name} {word}",
            f"{name} {word} {word}",
            f"{name} x {word}",
            f"{name} 1 {word}",
        ):
            if name in ("quit", "exit"):
                continue
            answer = connection.execute(line)
            if "internal error" in answer or error_log.records:
                failures.append(f"{line!r} → {answer}\n{error_log.text()}")
                error_log.records.clear()
    connection.sock.close()
    assert not failures, "\n".join(failures)
