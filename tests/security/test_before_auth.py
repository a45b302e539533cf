"""No method is reachable before authorisation on a `--require-key` master (docs/security.md), made
from the method and command tables so that a new method or command is covered the day it is
added: over JSON-RPC every method but `hello` answers -32001, also after a refused hello; on the
console every command but `login` and `quit` answers "log in first"."""

from __future__ import annotations

import pytest

from farmhand.master.api import METHODS, Access
from farmhand.master.console import ALIASES, COMMANDS
from farmhand.master.console.shell import LOGIN_FIRST
from tests.support import ConsoleClient, MasterProcess, RpcClient

from .conftest import UNAUTHORIZED, admin_key

pytestmark = pytest.mark.timeout(60)

OPEN_COMMANDS = {"login", "quit", "exit"}


def test_only_hello_is_open_in_the_method_table() -> None:
    assert [name for name, entry in METHODS.items() if entry.access is Access.OPEN] == ["hello"]


def test_every_method_needs_a_key(guarded: MasterProcess) -> None:
    with RpcClient(guarded.port) as stranger:
        for attempt in ("before any hello", "after a refused hello"):
            for name in sorted(set(METHODS) - {"hello"}):
                reply = stranger.request(name)
                assert reply.get("error", {}).get("code") == UNAUTHORIZED, (attempt, name, reply)
                assert reply["error"]["data"]["reason"] == "key_required"
            bad = stranger.request("hello", role="api", name="", proto=1, key="fhk_nope_nope")
            assert bad["error"]["code"] == UNAUTHORIZED
        # Notifications get no answer; they must not have done anything either.
        for name in sorted(set(METHODS) - {"hello"}):
            stranger.notify(name)
        assert stranger.request("ping")["error"]["code"] == UNAUTHORIZED
    with RpcClient(guarded.port) as admin:
        admin.call("hello", role="api", name="", proto=1, key=admin_key(guarded))
        assert admin.call("clients.list")["clients"] == []
        assert admin.call("jobs.list")["total"] == 0
        assert [e["method"] for e in admin.call("audit.list")["entries"]] == []


def test_every_console_command_needs_a_login(guarded: MasterProcess) -> None:
    with ConsoleClient(guarded.port) as console:
        for name in sorted(set(COMMANDS) | set(ALIASES)):
            if name in OPEN_COMMANDS:
                continue
            for line in (name, f"{name} all", f"{name} 1 --json"):
                assert console.command(line) == LOGIN_FIRST, line
        assert console.command("login fhk_not_it").startswith("error: ")
        assert console.command("help") == LOGIN_FIRST
        assert console.command(f"login {admin_key(guarded)}") == "logged in"
        assert console.command("ping") == "pong"


def test_the_open_console_commands_are_exactly_login_and_quit() -> None:
    open_commands = {name for name, command in COMMANDS.items() if command.open}
    assert open_commands == {"login", "quit"}
    assert {alias for alias, name in ALIASES.items() if name in open_commands} == {"exit"}
