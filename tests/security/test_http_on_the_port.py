"""Finding 9.1: a web page must not be able to drive the master's port.

A browser's `fetch(url, {mode: "no-cors", method: "POST", body})` reaches any host:port; its
bytes land in the console dialect (first byte `P`). The master must see HTTP for what it is and
close the connection before any line of it runs (as Redis does), whatever the body says.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from tests.support import PROMPT, ConsoleClient, MasterProcess, Program, RpcClient, wait_for

from .conftest import read_until_closed

pytestmark = pytest.mark.timeout(30)

# What Chromium 120 sends for fetch("http://127.0.0.1:PORT/", {mode: "no-cors", method: "POST",
# body: "\nsubmit x -- touch FILE\n"}) from a page on http://evil.example.
BROWSER_HEADERS = (
    "POST / HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\n"
    "Connection: keep-alive\r\n"
    "Content-Length: {length}\r\n"
    'sec-ch-ua: "Chromium";v="120", "Not?A_Brand";v="8"\r\n'
    'sec-ch-ua-platform: "Linux"\r\n'
    "sec-ch-ua-mobile: ?0\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36\r\n"
    "Content-Type: text/plain;charset=UTF-8\r\n"
    "Accept: */*\r\n"
    "Origin: http://evil.example\r\n"
    "Sec-Fetch-Site: cross-site\r\n"
    "Sec-Fetch-Mode: no-cors\r\n"
    "Sec-Fetch-Dest: empty\r\n"
    "Referer: http://evil.example/\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Accept-Language: en-US,en;q=0.9\r\n"
    "\r\n"
)


def browser_post(port: int, body: bytes) -> bytes:
    head = BROWSER_HEADERS.format(port=port, length=len(body))
    return head.encode() + body


def jobs_total(port: int) -> int:
    with RpcClient(port) as rpc:
        return int(rpc.call("jobs.list")["total"])


def send_and_read(port: int, data: bytes) -> tuple[bytes, bool, float]:
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        reply, closed = read_until_closed(sock)
    return reply, closed, time.monotonic() - began


def test_a_browser_post_runs_nothing_even_with_a_worker_online(
    master: MasterProcess, tmp_path: Path
) -> None:
    worker = Program(
        "worker.py",
        *("--master", master.address, "--name", "w1", "--work-dir", str(tmp_path / "work")),
        log_path=tmp_path / "worker.log",
    )
    try:
        with RpcClient(master.port) as rpc:
            wait_for(lambda: rpc.call("clients.list", select="w1 online")["clients"], what="w1")
        target = tmp_path / "PWNED"
        body = f"\nsubmit x -- touch {target}\n".encode()
        reply, closed, took = send_and_read(master.port, browser_post(master.port, body))
        assert closed, "a keep-alive HTTP request must be closed by the master at once"
        assert took < 2.0
        assert b"unknown command" not in reply
        assert b"submitted" not in reply
        # The request line ended the session: no prompt after the banner's.
        assert reply.count(PROMPT) <= 1, reply
        assert jobs_total(master.port) == 0
        # If a job had been made, the worker would have run it within this time.
        time.sleep(0.5)
        assert not target.exists()
        assert re.search(r"HTTP", master.log()), "the refusal is logged"
    finally:
        worker.stop()


@pytest.mark.parametrize(
    "request_line",
    [
        b"GET / HTTP/1.1",
        b"GET /chat HTTP/1.1",  # a WebSocket upgrade starts as a GET
        b"OPTIONS * HTTP/1.1",
        b"PRI * HTTP/2.0",  # HTTP/2 with prior knowledge
        b"PUT http://127.0.0.1/x HTTP/1.0",  # absolute URI, as sent to a proxy
        b"PROPFIND /dav HTTP/1.1",  # any method token
        b"post / http/1.1",
    ],
)
def test_an_http_request_line_closes_the_connection(
    master: MasterProcess, request_line: bytes
) -> None:
    request = (
        request_line + b"\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"\r\nsubmit y -- true\r\n"
    )
    reply, closed, _ = send_and_read(master.port, request)
    assert closed
    assert b"unknown command" not in reply
    assert jobs_total(master.port) == 0


@pytest.mark.parametrize("header", ["Host: evil.example", "origin: http://evil.example"])
def test_a_host_or_origin_header_at_any_point_closes_the_session(
    master: MasterProcess, header: str
) -> None:
    with ConsoleClient(master.port) as console:
        assert console.command("ping") == "pong"
        console.send_raw(header.encode() + b"\r\nsubmit z -- true\r\n")
        reply, closed = read_until_closed(console.sock)
    assert closed
    assert b"submitted" not in reply
    assert jobs_total(master.port) == 0


def test_console_words_that_merely_mention_http_still_work(master: MasterProcess) -> None:
    with ConsoleClient(master.port) as console:
        reply = console.command("submit web -- curl -s http://example/ HTTP/1.1")
        assert reply.startswith("submitted job"), reply
        assert console.command("ping") == "pong"


def test_refusals_are_logged_at_a_bounded_rate(master: MasterProcess) -> None:
    for _ in range(60):
        send_and_read(master.port, browser_post(master.port, b"ping\n"))
    with ConsoleClient(master.port) as console:
        assert console.command("ping") == "pong"
    lines = [line for line in master.log().splitlines() if "WARNING" in line and "HTTP" in line]
    assert 1 <= len(lines) <= 3, lines
