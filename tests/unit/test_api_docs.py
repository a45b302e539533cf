"""The method table is the one description of the API: rpc.discover's OpenRPC document,
docs/api.md and the console's help are generated from it, and each method's handler reads
exactly the params its entry declares. Also: the tables are assembled explicitly and refuse
duplicates; the console's modules mirror the api's."""

from __future__ import annotations

import ast
import inspect
import textwrap
from typing import Any

import pytest

from dashboard.surface import surface_of
from farmhand import __version__
from farmhand.master import api, console
from farmhand.master.api import METHODS
from farmhand.master.api.base import Access, Method, assemble, collector, integer, string
from farmhand.master.api.docs import DOC, render
from farmhand.master.api.openrpc import document
from farmhand.master.console.base import Command, Reply
from farmhand.master.console.base import assemble as assemble_commands
from farmhand.master.params import parse_params
from protocol.errors import RpcError


def test_docs_api_md_is_not_stale() -> None:
    assert DOC.read_text() == render(), (
        "docs/api.md is stale: run `python -m farmhand.master.api.docs --write`"
    )


def test_rpc_discover_lists_every_method_of_the_table() -> None:
    doc = document()
    assert doc["openrpc"].startswith("1.2")
    assert doc["info"]["title"] == "farmhand" and doc["info"]["version"] == __version__
    assert [entry["name"] for entry in doc["methods"]] == sorted(METHODS)
    for entry in doc["methods"]:
        declared = METHODS[entry["name"]].params
        assert [param["name"] for param in entry["params"]] == [p.name for p in declared]
        assert all(param["summary"] and "schema" in param for param in entry["params"])
        assert entry["x-writes"] is METHODS[entry["name"]].writes
    by_name = {entry["name"]: entry for entry in doc["methods"]}
    limit = next(p for p in by_name["jobs.list"]["params"] if p["name"] == "limit")
    assert limit == {
        "name": "limit",
        "summary": limit["summary"],
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 10_000, "default": 100},
    }
    status = next(p for p in by_name["jobs.list"]["params"] if p["name"] == "status")
    assert "queued" in status["schema"]["enum"]
    assert by_name["hello"]["x-access"]["level"] == "open"
    assert by_name["heartbeat"]["x-access"]["principals"] == ["worker", "hardware", "auth", "node"]
    assert by_name["jobs.submit"]["x-access"] == {"level": "admin", "principals": ["admin"]}
    assert by_name["rpc.discover"]["x-access"]["principals"] == ["admin", "read"]


# Params a worker sends that are type-checked and accepted but not used by the master.
CHECKED_NOT_KEPT = {"task.started": {"pid"}, "task.finished": {"duration_s"}}


def test_every_method_has_a_summary_and_its_params_declared() -> None:
    for entry in METHODS.values():
        assert entry.summary, entry.name
        assert all(param.summary for param in entry.params), entry.name
        reads, whole = _reads(entry)
        declared = {param.name for param in entry.params}
        assert reads <= declared, f"{entry.name} reads undeclared params {reads - declared}"
        declared -= CHECKED_NOT_KEPT.get(entry.name, set())
        if not whole:  # p handed on whole (jobs.submit's read_submission) reads them all
            assert declared <= reads, f"{entry.name} declares unread params {declared - reads}"


def _reads(entry: Method) -> tuple[set[str], bool]:
    """The `p["name"]` reads in the handler and the module helpers it hands `p` to; and
    whether it hands `p` on to a function of another module."""
    reads: set[str] = set()
    whole = False
    todo, seen = [entry.handler], set()
    while todo:
        function = todo.pop()
        if function in seen:
            continue
        seen.add(function)
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Name)
                and node.value.id == "p"
                and isinstance(node.slice, ast.Constant)
            ):
                reads.add(node.slice.value)
            if isinstance(node, ast.Call) and any(
                isinstance(arg, ast.Name) and arg.id == "p" for arg in node.args
            ):
                helper = function.__globals__.get(getattr(node.func, "id", ""))
                if inspect.getmodule(helper) is inspect.getmodule(entry.handler):
                    todo.append(helper)
                else:
                    whole = True
    return reads, whole


def test_params_are_parsed_from_the_declaration() -> None:
    declared = (string("select", "a selector", "all"), integer("limit", "n", 5, minimum=1))
    assert parse_params("x.list", declared, {}) == {"select": "all", "limit": 5}
    assert parse_params("x.list", declared, {"limit": 7, "select": None}) == {
        "select": "all",
        "limit": 7,
    }
    for params, reason, message in [
        ({"limit": 0}, "out_of_range", "x.list: parameter 'limit' must be in 1 to …, not 0"),
        ({"limit": "7"}, "bad_param", "x.list: parameter 'limit' must be an integer"),
        ({"selct": "all"}, "unknown_param", "x.list: unknown parameter 'selct'"),
    ]:
        with pytest.raises(RpcError) as caught:
            parse_params("x.list", declared, params)
        assert caught.value.reason == reason and caught.value.message.startswith(message)


def _handler(services: Any, session: Any, p: dict[str, Any]) -> None:
    """A handler."""


def test_the_tables_refuse_a_name_declared_twice() -> None:
    first: list[Method] = []
    second: list[Method] = []
    collector(first)("x.list", Access.READ)(_handler)
    collector(second)("x.list", Access.ADMIN)(_handler)
    assert len(assemble([first])) == 1
    with pytest.raises(RuntimeError, match=r"x\.list declared twice"):
        assemble([first, second])
    agents_only: list[Method] = []
    collector(agents_only)("x.report", Access.AGENT)(_handler)
    with pytest.raises(RuntimeError, match="names no agent role"):
        assemble([agents_only])

    def run(console: Any, args: list[str]) -> Reply:
        return Reply(None, "")

    commands = [Command("a", "a", "a", run), Command("b", "b", "b", run, aliases=("a",))]
    with pytest.raises(RuntimeError, match="console command a declared twice"):
        assemble_commands([commands])


def test_the_console_mirrors_the_api_module_by_module() -> None:
    api_names = [module.__name__.rsplit(".", 1)[1] for module in api.MODULES]
    console_names = [module.__name__.rsplit(".", 1)[1] for module in console.MODULES]
    # rpc (rpc.discover) is the API describing itself; the console's `help` is its face.
    assert api_names == [*console_names, "rpc"]
    for module in console.MODULES:
        name = module.__name__.rsplit(".", 1)[1]
        for command in module.COMMANDS:
            assert all(method in METHODS for method in command.methods), command.name
            owners = {METHODS[method].handler.__module__ for method in command.methods}
            assert owners <= {f"farmhand.master.api.{name}"}, (command.name, owners)


def test_help_shows_a_commands_methods_from_the_table() -> None:
    from farmhand.master.console.session import help_

    reply = help_(None, ["jobs"])  # type: ignore[arg-type]  (help needs no connection)
    lines = reply.text.splitlines()
    assert lines[0] == "usage: jobs [STATUS]"
    assert lines[2] == f"calls jobs.list: {METHODS['jobs.list'].summary}"
    assert any(
        line.strip().startswith("limit (integer, 1 to 10000; default 100)") for line in lines
    )
    assert reply.result["methods"][0]["name"] == "jobs.list"


def test_the_dashboard_serves_what_the_table_says() -> None:
    """The dashboard's /api/ allow-list comes from rpc.discover: every read and write it served
    from its own hand-kept lists before is still served, with the same params."""
    surface = surface_of(document())
    assert surface.reads["jobs.list"] == {"status": "text", "limit": "int", "offset": "int"}
    assert surface.reads["kegs.list"] == {"active": "bool"}
    assert surface.reads["status"] == {}
    assert {
        "clients.list", "jobs.get", "tasks.list", "tasks.log", "taps.list", "pours.list",
        "pours.totals", "presence.list", "readings.query", "events.recent", "devices.list",
        "users.list", "tokens.list", "keys.list", "audit.list",
    } <= set(surface.reads)  # fmt: skip
    assert surface.admin_reads == {"keys.list", "audit.list", "webhooks.list"}
    assert not {"hello", "users.authenticate", "subscribe", "heartbeat"} & set(surface.reads)
    assert surface.writes == {name for name, entry in METHODS.items() if entry.writes}
    assert {"jobs.submit", "taps.configure", "keys.revoke", "tokens.assign"} <= surface.writes
