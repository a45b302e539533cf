"""Finding 9.4: every role may call only what its table allows, and the table is the method
table: the expectations below are generated from `METHODS`, so a new method is covered the day
it is added, and the explicit lists pin what each agent role may do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from farmhand.master.api import METHODS
from farmhand.master.api.permissions import PRINCIPALS, allowed_methods, permission_table
from tests.support import ROOT, MasterProcess, RpcClient, RpcFailure

from .conftest import UNAUTHORIZED

pytestmark = pytest.mark.timeout(60)

AGENT_BASICS = {"hello", "heartbeat", "ping"}
EXPECTED_AGENT_METHODS = {
    "worker": AGENT_BASICS
    | {"task.started", "task.output", "task.progress", "task.finished", "task.preview"},
    "hardware": AGENT_BASICS
    | {"meter.update", "reading", "token.update", "device.status", "event.report"},
    "auth": AGENT_BASICS
    | {"meter.update", "reading", "token.update", "device.status", "event.report"},
    "node": AGENT_BASICS | {"procs.update"},
}
# What the issue found agent keys reading.
SECRETS_FOR_OPERATORS = {"users.list", "tokens.list", "tasks.log", "events.recent", "subscribe"}


def test_agent_roles_may_call_exactly_their_reports() -> None:
    for role, expected in EXPECTED_AGENT_METHODS.items():
        assert allowed_methods(role) == expected, role
        assert not SECRETS_FOR_OPERATORS & allowed_methods(role)


def test_a_read_key_may_call_every_read_and_no_write() -> None:
    read = allowed_methods("read")
    assert "jobs.list" in read and "status" in read and "audit.list" not in read
    for method in read:
        assert not METHODS[method].writes, method
    assert "keys.list" not in read  # key metadata is for admins
    assert allowed_methods("admin") >= read | {"jobs.submit", "keys.create", "audit.list"}


def test_the_docs_table_is_the_method_table() -> None:
    text = (ROOT / "docs" / "security.md").read_text()
    assert permission_table() in text, (
        "docs/security.md is stale: run `python -m farmhand.master.api.permissions --write`"
    )


@pytest.fixture
def sessions(guarded: MasterProcess, admin: RpcClient) -> Iterator[dict[str, RpcClient]]:
    """One authorised connection per principal (admin included)."""
    connections = {"admin": admin}
    for principal in PRINCIPALS:
        if principal == "admin":
            continue
        role = "api" if principal == "read" else principal
        params = {"role": role, "name": f"{principal}-1"}
        if principal == "read":
            params["scope"] = "read"
        key = admin.call("keys.create", **params)["key"]
        connection = RpcClient(guarded.port)
        connection.call("hello", role=role, name=f"{principal}-1", proto=1, key=key)
        connections[principal] = connection
    yield connections
    for principal, connection in connections.items():
        if principal != "admin":
            connection.close()


def test_every_method_is_enforced_as_the_table_says(sessions: dict[str, RpcClient]) -> None:
    wrong = []
    for principal, connection in sessions.items():
        if principal == "admin":
            continue  # admins may call everything; tested by the rest of the suite
        allowed = allowed_methods(principal)
        for name in sorted(METHODS):
            if name == "hello":
                continue
            reply = connection.request(name)  # no params: refused or a params error
            code = reply.get("error", {}).get("code")
            if (code == UNAUTHORIZED) == (name in allowed):
                wrong.append((principal, name, reply.get("error") or reply.get("result")))
    assert not wrong, "\n".join(map(str, wrong))


@pytest.mark.parametrize("role", ["worker", "hardware"])
def test_an_agent_key_reads_no_secrets(
    sessions: dict[str, RpcClient], admin: RpcClient, role: str
) -> None:
    admin.call("users.create", username="alice", password="correct horse battery")
    admin.call("tokens.assign", reader="core.rfid", token="deadbeef", username="alice")
    agent = sessions[role]
    for method, params in [
        ("users.list", {}),
        ("tokens.list", {}),
        ("tasks.log", {"task_id": 1}),
        ("events.recent", {}),
        ("subscribe", {"topics": ["clients"]}),
        ("clients.list", {}),
        ("jobs.list", {}),
    ]:
        with pytest.raises(RpcFailure) as failure:
            agent.call(method, **params)
        assert failure.value.code == UNAUTHORIZED, (method, failure.value.error)
    assert agent.call("ping") == "pong"


def test_a_read_key_cannot_write(sessions: dict[str, RpcClient]) -> None:
    reader = sessions["read"]
    assert reader.call("jobs.list")["total"] == 0
    with pytest.raises(RpcFailure) as failure:
        reader.call("jobs.submit", name="x", argv=["true"])
    assert failure.value.code == UNAUTHORIZED
    assert failure.value.reason == "admin_required"
    assert reader.call("jobs.list")["total"] == 0


def test_the_permission_doc_generator_writes_the_table(tmp_path: Path) -> None:
    from farmhand.master.api.permissions import write_table

    doc = tmp_path / "security.md"
    doc.write_text("intro\n<!-- permissions:begin -->\nold\n<!-- permissions:end -->\nend\n")
    write_table(doc)
    text = doc.read_text()
    assert permission_table() in text and "old" not in text and text.endswith("end\n")
