"""The operator console (docs/protocol.md) over raw sockets against a real master process.

Each test reads like a console session: what the operator types, what the master prints.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.support import PROMPT, ConsoleClient, MasterProcess, RpcClient, agent, wait_for

pytestmark = pytest.mark.timeout(20)

LIMIT_BYTES = 4096  # the console's own line limit (issue 9: a few KB; JSON-RPC keeps 1 MiB)
CLIENTS_HEADER = ["NAME", "ROLE", "HOST", "STATUS", "ENABLED", "LAST SEEN", "SLOTS", "TAGS"]


@pytest.fixture
def steady_master(tmp_path: Path) -> Iterator[MasterProcess]:
    """A master at the default 5 s heartbeat: agents that never heartbeat stay online
    for the whole test (the shared `master` fixture's 0.5 s would time them out)."""
    process = MasterProcess(tmp_path / "var")
    yield process
    process.stop()


@pytest.fixture
def farm(steady_master: MasterProcess) -> Iterator[MasterProcess]:
    """Three online clients (render-01, render-02, tap-1) and one offline (old-01)."""
    agents = [
        agent(steady_master.port, "render-01", info={"tags": ["gpu", "linux"], "slots": 2}),
        agent(steady_master.port, "render-02", info={"tags": ["linux"], "slots": 2}),
        agent(steady_master.port, "tap-1", role="hardware"),
    ]
    with agent(steady_master.port, "old-01", info={"tags": ["linux"], "slots": 1}):
        pass
    with RpcClient(steady_master.port) as rpc:
        wait_for(
            lambda: not rpc.call("clients.list", select="old-01")["clients"][0]["online"],
            timeout=5,
            what="old-01 to go offline",
        )
    yield steady_master
    for connection in agents:
        connection.close()


@pytest.fixture
def console(farm: MasterProcess) -> Iterator[ConsoleClient]:
    with ConsoleClient(farm.port) as session:
        yield session


@pytest.fixture
def rpc(farm: MasterProcess) -> Iterator[RpcClient]:
    with RpcClient(farm.port) as client:
        yield client


def table(text: str) -> list[dict[str, str]]:
    """Rows of a console table, keyed by header. Asserts every cell starts under its header."""
    lines = text.splitlines()
    # Cells are two or more spaces apart; a cell may hold single spaces ("LAST SEEN", "3s ago").
    header = list(re.finditer(r"\S+(?: \S+)*", lines[0]))
    starts = [match.start() for match in header]
    rows = []
    for line in lines[1:]:
        cells = list(re.finditer(r"\S+(?: \S+)*", line))
        assert [cell.start() for cell in cells] == starts, f"misaligned row:\n{text}"
        rows.append({h.group(): c.group() for h, c in zip(header, cells, strict=True)})
    return rows


def clients_table(text: str) -> tuple[list[dict[str, str]], str]:
    """The rows of a `clients` reply and its count line."""
    *body, count = text.splitlines()
    return (table("\n".join(body)) if body else []), count


def names(rows: list[dict[str, str]]) -> list[str]:
    return [row["NAME"] for row in rows]


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the master sends before it closes (a reset after the close counts as closed)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def assert_still_serving(master: MasterProcess) -> None:
    assert master.proc.poll() is None, "the master exited"
    with ConsoleClient(master.port) as fresh:
        assert fresh.command("ping") == "pong"


# --- banner, help -----------------------------------------------------------------------------


def test_banner_then_prompt(steady_master: MasterProcess) -> None:
    with ConsoleClient(steady_master.port) as console:
        banner = console.banner
        # An empty line prints nothing but the next prompt.
        console.send_raw(b"\r\n")
        assert console.read_until(PROMPT) == b""
    assert banner.startswith("farmhand master ")
    assert banner.endswith("\r\n") and banner.count("\r\n") == 1
    assert "'help'" in banner and "'quit'" in banner
    assert "log in" not in banner.lower()  # loopback peers are trusted


def test_help_lists_commands(steady_master: MasterProcess) -> None:
    with ConsoleClient(steady_master.port) as console:
        text = console.command("help")
    listed = {row["COMMAND"] for row in table("\n".join(text.splitlines()[:-1]))}
    assert {"help", "clients", "enable", "disable", "status", "quit"} <= listed
    assert "--json" in text.splitlines()[-1]


def test_help_command_shows_usage(steady_master: MasterProcess) -> None:
    with ConsoleClient(steady_master.port) as console:
        text = console.command("help clients")
    assert text.splitlines()[0] == "usage: clients [SELECTOR]"


def test_help_unknown_command_is_an_error_with_a_hint(steady_master: MasterProcess) -> None:
    with ConsoleClient(steady_master.port) as console:
        nonsense = console.command("help nosuch")
        near_miss = console.command("help clinets")
        assert console.command("help disable").startswith("usage: disable SELECTOR")
    assert nonsense.startswith("error: no command 'nosuch'")
    assert "type 'help'" in nonsense
    assert near_miss.startswith("error: no command 'clinets'")
    assert "did you mean 'clients'?" in near_miss


# --- clients ----------------------------------------------------------------------------------


def test_clients_prints_an_aligned_table_and_a_count(console: ConsoleClient) -> None:
    rows, count = clients_table(console.command("clients"))
    assert count == "4 clients (3 online, 0 disabled)"
    assert sorted(names(rows)) == ["old-01", "render-01", "render-02", "tap-1"]
    by_name = {row["NAME"]: row for row in rows}
    assert by_name["render-01"]["ROLE"] == "worker"
    assert by_name["render-01"]["STATUS"] == "idle"
    assert by_name["render-01"]["ENABLED"] == "yes"
    assert by_name["render-01"]["LAST SEEN"] == "now"
    assert by_name["render-01"]["SLOTS"] == "2"
    assert by_name["render-01"]["TAGS"] == "gpu,linux"
    assert by_name["tap-1"]["ROLE"] == "hardware"
    assert by_name["old-01"]["STATUS"] == "offline"
    assert by_name["old-01"]["LAST SEEN"].endswith(" ago")
    header = console.command("clients").splitlines()[0]
    assert re.findall(r"\S+(?: \S+)*", header)[: len(CLIENTS_HEADER)] == CLIENTS_HEADER


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("role=worker", ["old-01", "render-01", "render-02"]),
        ("role=hardware", ["tap-1"]),
        ("online", ["render-01", "render-02", "tap-1"]),
        ("offline", ["old-01"]),
        ("render-0*", ["render-01", "render-02"]),
        ("online role=worker tag=linux", ["render-01", "render-02"]),
        ("tag=gpu", ["render-01"]),
        ("render-02 tap-*", ["render-02", "tap-1"]),
    ],
)
def test_clients_selector_filters(console: ConsoleClient, selector: str, expected: list[str]):
    rows, count = clients_table(console.command(f"clients {selector}"))
    assert sorted(names(rows)) == expected
    assert count.startswith(f"{len(expected)} client")


def test_clients_with_no_match_prints_a_zero_count(console: ConsoleClient) -> None:
    assert console.command("clients nosuch-*") == "0 clients (0 online, 0 disabled)"
    assert console.command("clients offline role=hardware") == "0 clients (0 online, 0 disabled)"


# --- enable / disable -------------------------------------------------------------------------


def test_disable_and_enable_print_exactly_what_changed(console: ConsoleClient) -> None:
    assert console.command("disable render-01") == "disabled 1 client: render-01"
    assert console.command("disable render-0*") == (
        "disabled 1 client: render-02\nalready disabled: render-01"
    )
    assert console.command("disable render-0*") == "already disabled: render-01, render-02"
    _, count = clients_table(console.command("clients"))
    assert count == "4 clients (3 online, 2 disabled)"
    assert console.command("enable role=worker") == (
        "enabled 2 clients: render-01, render-02\nalready enabled: old-01"
    )
    assert console.command("enable render-01") == "already enabled: render-01"


def test_enable_disable_say_when_nothing_matched(console: ConsoleClient) -> None:
    assert console.command("disable nosuch-*") == "no client matches 'nosuch-*': nothing disabled"
    assert console.command("enable nosuch-*") == "no client matches 'nosuch-*': nothing enabled"


@pytest.mark.parametrize("verb", ["enable", "disable"])
def test_enable_disable_without_a_selector_is_a_usage_error(console: ConsoleClient, verb: str):
    reply = console.command(verb)
    assert reply.startswith(f"error: usage: {verb} SELECTOR")
    assert "\n" not in reply
    _, count = clients_table(console.command("clients"))
    assert count == "4 clients (3 online, 0 disabled)"


def test_console_disable_is_seen_over_json_rpc(console: ConsoleClient, rpc: RpcClient) -> None:
    console.command("disable render-02")
    listed = {c["name"]: c["enabled"] for c in rpc.call("clients.list")["clients"]}
    assert listed == {"render-01": True, "render-02": False, "tap-1": True, "old-01": True}


def test_json_rpc_enable_is_seen_in_the_console(console: ConsoleClient, rpc: RpcClient) -> None:
    assert rpc.call("clients.disable", select="render-*") == {
        "matched": ["render-01", "render-02"],
        "changed": ["render-01", "render-02"],
    }
    rows, _ = clients_table(console.command("clients disabled"))
    assert names(rows) == ["render-01", "render-02"]
    rpc.call("clients.enable", select="render-01")
    rows, count = clients_table(console.command("clients render-*"))
    assert {row["NAME"]: row["ENABLED"] for row in rows} == {"render-01": "yes", "render-02": "NO"}
    assert count == "2 clients (2 online, 1 disabled)"
    assert console.command("enable render-01") == "already enabled: render-01"


# --- --json -----------------------------------------------------------------------------------


@pytest.mark.parametrize("selector", ["", "role=worker", "offline", "nosuch-*"])
def test_json_flag_prints_the_methods_result(
    console: ConsoleClient, rpc: RpcClient, selector: str
) -> None:
    line = console.command(f"clients {selector} --json")
    assert "\n" not in line
    assert orjson.loads(line) == rpc.call("clients.list", select=selector or "all")


def test_json_flag_on_enable_and_disable(console: ConsoleClient, rpc: RpcClient) -> None:
    disabled = orjson.loads(console.command("disable render-0* --json"))
    assert disabled == {
        "matched": ["render-01", "render-02"],
        "changed": ["render-01", "render-02"],
    }
    # The same call over JSON-RPC now changes nothing: both faces share one method.
    assert rpc.call("clients.disable", select="render-0*") == {
        "matched": ["render-01", "render-02"],
        "changed": [],
    }
    enabled = orjson.loads(console.command("enable render-02 --json"))
    assert enabled == {"matched": ["render-02"], "changed": ["render-02"]}


# --- errors keep the session ------------------------------------------------------------------


def test_unknown_command_suggests_the_nearest_and_the_session_stays(console: ConsoleClient):
    reply = console.command("clientz")
    assert reply.startswith("error: unknown command 'clientz'")
    assert "did you mean 'clients'?" in reply
    assert "\n" not in reply
    assert "did you mean 'disable'?" in console.command("disabel render-01")
    assert console.command("frobnicate").startswith("error: unknown command 'frobnicate'")
    _, count = clients_table(console.command("clients"))
    assert count == "4 clients (3 online, 0 disabled)"


def test_bad_quoting_is_an_error_and_the_session_stays(console: ConsoleClient) -> None:
    reply = console.command('clients "unterminated')
    assert reply.startswith("error: ")
    assert "quot" in reply
    assert "\n" not in reply
    rows, _ = clients_table(console.command("clients 'render-01'"))
    assert names(rows) == ["render-01"]


def test_invalid_utf8_is_an_error_and_the_session_stays(console: ConsoleClient) -> None:
    console.send_raw(b"\xc3\x28\xe2\x82 \xf0\x28\x8c\xbc\x80\xbf\r\n")
    reply = console.read_until(PROMPT).decode()
    assert reply.startswith("error: ")
    assert reply.count("\r\n") == 1
    assert console.command("ping") == "pong"


def test_binary_junk_is_an_error_and_the_session_stays(console: ConsoleClient) -> None:
    junk = bytes(b for b in range(256) if b not in (0x03, 0x04, 0x0A, 0x0D, 0xFF))
    console.send_raw(junk + b"\n")
    reply = console.read_until(PROMPT).decode()
    assert reply.startswith("error: ")
    assert reply.count("\r\n") == 1
    assert console.command("ping") == "pong"


def test_overlong_line_is_refused_and_the_connection_closed(farm: MasterProcess) -> None:
    with ConsoleClient(farm.port) as console:
        # The master may close before it has read all of it.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            console.send_raw(b"x" * (2 * LIMIT_BYTES) + b"\r\n")
        reply = read_until_closed(console.sock).decode()
    assert "error: " in reply
    assert str(LIMIT_BYTES) in reply
    assert PROMPT.decode() not in reply
    assert_still_serving(farm)


# --- line endings, telnet bytes, editing ------------------------------------------------------


@pytest.mark.parametrize("ending", [b"\r\n", b"\r\0", b"\n"], ids=["CRLF", "CRNUL", "LF"])
def test_line_endings(console: ConsoleClient, ending: bytes) -> None:
    rows, _ = clients_table(console.command("clients tap-1", ending=ending))
    assert names(rows) == ["tap-1"]
    assert console.command("ping", ending=ending) == "pong"


def test_mixed_line_endings_in_one_burst(console: ConsoleClient) -> None:
    console.send_raw(b"ping\r\nping\r\0ping\n")
    data = b""
    while data.count(PROMPT) < 3:
        data += console.sock.recv(65536)
    assert data == b"pong\r\nfarmhand> " * 3


def test_line_split_across_packets(console: ConsoleClient) -> None:
    for piece in (b"cli", b"ents tap", b"-1\r", b"\n"):
        console.send_raw(piece)
    rows, _ = clients_table(console.read_until(PROMPT).decode().replace("\r\n", "\n").strip())
    assert names(rows) == ["tap-1"]


def test_telnet_negotiation_bytes_are_ignored(console: ConsoleClient) -> None:
    negotiation = (
        b"\xff\xfd\x03"  # IAC DO SUPPRESS-GO-AHEAD
        b"\xff\xfb\x18"  # IAC WILL TERMINAL-TYPE
        b"\xff\xfa\x18\x00xterm\xff\xf0"  # IAC SB TERMINAL-TYPE IS "xterm" IAC SE
        b"\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0"  # IAC SB NAWS 80x24 IAC SE
    )
    console.send_raw(negotiation + b"clients \xff\xf1ren\xff\xfe\x01der-01\r\xff\xf1\n")
    rows, _ = clients_table(console.read_until(PROMPT).decode().replace("\r\n", "\n").strip())
    assert names(rows) == ["render-01"]


@pytest.mark.parametrize(
    "typed", [b"clientsx\x7f", b"clientz\x08s", b"ping\x7f\x7f\x7f\x7fclients"]
)
def test_backspace_edits_the_line(console: ConsoleClient, typed: bytes) -> None:
    console.send_raw(typed + b" tap-1\r\n")
    rows, _ = clients_table(console.read_until(PROMPT).decode().replace("\r\n", "\n").strip())
    assert names(rows) == ["tap-1"]


# --- ending a session -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [b"quit\r\n", b"exit\r\n", b"QUIT\n", b"\x04", b"half a line\x04", b"\xff\xf4"],
    ids=["quit", "exit", "QUIT", "ctrl-d", "ctrl-d-mid-line", "iac-ip"],
)
def test_session_ends_politely(farm: MasterProcess, typed: bytes) -> None:
    with ConsoleClient(farm.port) as console:
        console.send_raw(typed)
        tail = console.read_all()
    assert tail.rstrip(b"\r\n").endswith(b"bye")
    assert PROMPT not in tail
    assert_still_serving(farm)


# --- dialect by first byte --------------------------------------------------------------------


def test_a_silent_peer_gets_the_console(steady_master: MasterProcess) -> None:
    with socket.create_connection(("127.0.0.1", steady_master.port), timeout=5) as sock:
        data = b""
        while not data.endswith(PROMPT):
            chunk = sock.recv(4096)
            assert chunk, "closed before the prompt"
            data += chunk
    assert data.startswith(b"farmhand master ")


def test_an_opening_brace_selects_json_rpc(steady_master: MasterProcess) -> None:
    with RpcClient(steady_master.port) as rpc:
        rpc.send_raw(b'{"jsonrpc":"2.0","id":7,"method":"ping"}\n')
        assert rpc.read_message() == {"jsonrpc": "2.0", "id": 7, "result": "pong"}
        # A console line on a JSON-RPC connection is bad JSON, not a command.
        rpc.send_raw(b"clients\n")
        assert rpc.read_message()["error"]["code"] == -32700
        assert rpc.call("ping") == "pong"


# --- trust: --require-key ---------------------------------------------------------------------


@pytest.fixture
def locked_master(tmp_path: Path) -> Iterator[MasterProcess]:
    process = MasterProcess(tmp_path / "var", "--require-key")
    yield process
    process.stop()


def test_require_key_console_asks_for_login(locked_master: MasterProcess) -> None:
    key = (locked_master.data_dir / "admin.key").read_text().strip()
    with RpcClient(locked_master.port) as admin:
        admin.call("hello", role="api", name="", proto=1, key=key)
        # An agent needs a key of its own role (issue 9.3), not the admin's.
        worker_key = admin.call("keys.create", role="worker", name="render-01")["key"]
    with agent(locked_master.port, "render-01", key=worker_key):
        with ConsoleClient(locked_master.port) as console:
            assert "login KEY" in console.banner
            assert console.command("clients") == "error: log in first: login KEY"
            assert console.command("disable render-01") == "error: log in first: login KEY"
            # Login before any other command (docs/protocol.md), help included (issue 9.5).
            assert console.command("help clients") == "error: log in first: login KEY"
            failed = console.command("login fhk_not_a_real_key")
            assert failed.startswith("error: ")
            assert console.command("clients") == "error: log in first: login KEY"
            assert console.command(f"login {key}") == "logged in"
            rows, count = clients_table(console.command("clients"))
            assert names(rows) == ["render-01"]
            assert count == "1 client (1 online, 0 disabled)"
            assert console.command("disable render-01") == "disabled 1 client: render-01"
        with ConsoleClient(locked_master.port) as again:
            # Logging in is per session.
            assert again.command("clients") == "error: log in first: login KEY"


# --- --json and `--` (issue 10 finding 8) ----------------------------------------------------


def test_json_after_double_dash_belongs_to_the_program(console: ConsoleClient, rpc: RpcClient):
    reply = console.command("submit j -- echo --json")
    assert reply.startswith("submitted job"), reply
    job_id = int(re.search(r"job (\d+)", reply).group(1))  # type: ignore[union-attr]
    assert rpc.call("jobs.get", job_id=job_id)["argv"] == ["echo", "--json"]
    # Before `--` it still asks for JSON; after it, it is the program's.
    raw = orjson.loads(console.command("submit k --json -- printf %s --json"))
    assert rpc.call("jobs.get", job_id=raw["job_id"])["argv"] == ["printf", "%s", "--json"]


def test_json_errors_are_printed_as_json(console: ConsoleClient) -> None:
    for line, code in [
        ("job 999 --json", -32004),
        ("disable --json", None),
        ("frobnicate --json", None),
        ('clients "open --json', None),
    ]:
        error = orjson.loads(console.command(line))["error"]
        assert isinstance(error["message"], str) and error["message"], line
        if code is not None:
            assert error["code"] == code, (line, error)
    assert console.command("job 999").startswith("error: ")
