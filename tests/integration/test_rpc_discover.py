"""rpc.discover over real TCP: the master describes its API from the method table, and what it
says a method accepts is what the method accepts (an undeclared param is refused)."""

from __future__ import annotations

from typing import Any

from farmhand import __version__
from farmhand.master.api import METHODS
from tests.support import MasterProcess, RpcClient


def _discover(api: RpcClient) -> dict[str, dict[str, Any]]:
    doc = api.call("rpc.discover")
    assert doc["openrpc"].startswith("1.2") and doc["info"]["title"] == "farmhand"
    assert doc["info"]["version"] == __version__
    return {entry["name"]: entry for entry in doc["methods"]}


def test_rpc_discover_answers_every_method_with_its_params(api: RpcClient) -> None:
    methods = _discover(api)
    assert sorted(methods) == sorted(METHODS)
    for name, entry in methods.items():
        assert entry["summary"], name
        assert [p["name"] for p in entry["params"]] == [p.name for p in METHODS[name].params]
    submit = {p["name"]: p for p in methods["jobs.submit"]["params"]}
    assert submit["name"]["required"] and not submit["chunk"]["required"]
    assert submit["chunk"]["schema"]["default"] == 1
    assert methods["jobs.submit"]["x-writes"] is True


def test_every_method_refuses_a_param_it_does_not_declare(api: RpcClient) -> None:
    """Each read an admin may call, sent its declared optional params at their defaults, is
    answered; with one param more it is refused, naming it. A method with required params
    first names the first missing one."""
    methods = _discover(api)
    checked = 0
    for name, entry in sorted(methods.items()):
        if name == "hello" or "admin" not in entry["x-access"]["principals"]:
            continue
        required = [p["name"] for p in entry["params"] if p["required"]]
        reply = api.request(name, undeclared_param=1)
        error = reply["error"]
        if required:
            assert error["data"]["reason"] == "missing_param", (name, error)
            assert repr(required[0]) in error["message"], (name, error)
            continue
        assert error["data"]["reason"] == "unknown_param", (name, error)
        assert "'undeclared_param'" in error["message"], (name, error)
        if entry["x-writes"] or name == "subscribe":
            continue
        defaults = {p["name"]: p["schema"].get("default") for p in entry["params"]}
        assert "result" in api.request(name, **defaults), name
        checked += 1
    assert checked >= 10


def test_a_read_key_may_discover(master: MasterProcess, api: RpcClient) -> None:
    key = api.call("keys.create", role="api", name="viewer", scope="read")["key"]
    with RpcClient(master.port) as reader:
        reader.call("hello", role="api", name="viewer", proto=1, key=key)
        assert sorted(_discover(reader)) == sorted(METHODS)
