"""Finding 9.3 and 9.5 (first point), issue 10.3: a key belongs to one client name and one role.

A worker key issued for w2 must not say hello as the online w1 (and receive w1's orders); a
hardware key must not change w1's role; a refused hello leaves the session unauthorised and
changes nothing. A name online with one role cannot be taken by another role, even on loopback.
"""

from __future__ import annotations

import orjson
import pytest

from tests.integration.fakeworker import FakeWorker
from tests.support import MasterProcess, RpcClient, RpcFailure, agent

from .conftest import CONFLICT, UNAUTHORIZED

pytestmark = pytest.mark.timeout(30)


def hello(port: int, role: str, name: str, key: str) -> RpcClient:
    connection = RpcClient(port)
    connection.call("hello", role=role, name=name, proto=1, key=key)
    return connection


def refused_hello(port: int, role: str, name: str, key: str, code: int = UNAUTHORIZED) -> str:
    """Say hello and expect a refusal; then check the session stayed unauthorised."""
    with RpcClient(port) as connection:
        with pytest.raises(RpcFailure) as failure:
            connection.call("hello", role=role, name=name, proto=1, key=key)
        assert failure.value.code == code, failure.value.error
        with pytest.raises(RpcFailure) as after:
            connection.call("ping")
        assert after.value.code == UNAUTHORIZED, "a refused hello must not authorise the session"
        return str(failure.value.reason)


def client_row(admin: RpcClient, name: str) -> dict:
    return admin.call("clients.list", select=name)["clients"][0]


def test_a_key_created_for_w2_cannot_take_over_w1(guarded: MasterProcess, admin: RpcClient):
    key1 = admin.call("keys.create", role="worker", name="w1")
    key2 = admin.call("keys.create", role="worker", name="w2")
    assert key2["name"] == "w2"
    w1 = hello(guarded.port, "worker", "w1", key1["key"])
    try:
        reason = refused_hello(guarded.port, "worker", "w1", key2["key"])
        assert reason == "wrong_name"
        # w1 keeps its connection: it still answers, and is still online from it.
        assert w1.call("ping") == "pong"
        assert client_row(admin, "w1")["online"]
        # w1's orders still go to w1.
        admin.call("jobs.submit", name="secret", argv=["true"], env={"TOKEN": "s3cret"})
        order = w1.read_message()
        assert order["method"] == "task.run"
        assert order["params"]["env"] == {"TOKEN": "s3cret"}
    finally:
        w1.close()


def test_an_unnamed_agent_key_is_bound_at_its_first_hello(
    guarded: MasterProcess, admin: RpcClient
) -> None:
    key = admin.call("keys.create", role="worker")
    assert key["name"] == ""
    with hello(guarded.port, "worker", "first", key["key"]):
        pass
    [listed] = [k for k in admin.call("keys.list")["keys"] if k["key_id"] == key["key_id"]]
    assert listed["name"] == "first"
    assert refused_hello(guarded.port, "worker", "second", key["key"]) == "wrong_name"
    with hello(guarded.port, "worker", "first", key["key"]) as again:
        assert again.call("ping") == "pong"
    assert [row["name"] for row in admin.call("clients.list")["clients"]] == ["first"]


def test_the_binding_survives_a_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    process = MasterProcess(tmp_path / "var", "--require-key")
    try:
        key = (process.data_dir / "admin.key").read_text().strip()
        with hello(process.port, "api", "", key) as admin:
            worker_key = admin.call("keys.create", role="worker")["key"]
        with hello(process.port, "worker", "bound-one", worker_key):
            pass
    finally:
        process.stop()
    process = MasterProcess(tmp_path / "var", "--require-key")
    try:
        assert refused_hello(process.port, "worker", "other", worker_key) == "wrong_name"
    finally:
        process.stop()


def test_a_hardware_key_cannot_change_a_workers_role(
    guarded: MasterProcess, admin: RpcClient
) -> None:
    worker_key = admin.call("keys.create", role="worker", name="w1")["key"]
    hardware_key = admin.call("keys.create", role="hardware", name="keg1")["key"]
    with hello(guarded.port, "worker", "w1", worker_key) as w1:
        for role in ("hardware", "worker"):
            refused_hello(guarded.port, role, "w1", hardware_key)
        assert client_row(admin, "w1")["role"] == "worker"
        assert w1.call("ping") == "pong"


def test_an_api_key_says_hello_only_as_api(guarded: MasterProcess, admin: RpcClient) -> None:
    api_key = admin.call("keys.create", role="api", name="scripts")["key"]
    for role in ("worker", "hardware", "node", "auth"):
        assert refused_hello(guarded.port, role, "x1", api_key) == "wrong_role"
    assert admin.call("clients.list")["clients"] == []


def test_a_refused_name_leaves_the_session_unauthorised(
    guarded: MasterProcess, admin: RpcClient
) -> None:
    key = admin.call("keys.create", role="worker", name="w1")["key"]
    with RpcClient(guarded.port) as connection:
        with pytest.raises(RpcFailure) as bad_name:
            connection.call("hello", role="worker", name="not valid!", proto=1, key=key)
        assert bad_name.value.code in (UNAUTHORIZED, -32602)
        with pytest.raises(RpcFailure) as after:
            connection.call("ping")
        assert after.value.code == UNAUTHORIZED


def test_an_agent_key_name_must_be_a_client_name(admin: RpcClient) -> None:
    with pytest.raises(RpcFailure) as failure:
        admin.call("keys.create", role="worker", name="render farm")
    assert failure.value.code == -32602
    labelled = admin.call("keys.create", role="worker", label="render farm, rack 2")
    assert labelled["label"] == "render farm, rack 2"


# -- a name shared by two roles (issue 10.3) -----------------------------------------


def test_a_name_online_as_a_worker_cannot_say_hello_as_a_node_even_on_loopback(
    master: MasterProcess,
) -> None:
    worker = FakeWorker(master.port, "studio-1")
    try:
        with RpcClient(master.port) as node:
            with pytest.raises(RpcFailure) as failure:
                node.call("hello", role="node", name="studio-1", proto=1)
            assert failure.value.code == CONFLICT
        assert worker.call("ping") == "pong"
        with RpcClient(master.port) as rpc:
            row = rpc.call("clients.list", select="studio-1")["clients"][0]
        assert (row["role"], row["online"]) == ("worker", True)
    finally:
        worker.close()


def test_the_same_role_still_replaces_an_old_connection(master: MasterProcess) -> None:
    first = agent(master.port, "w9")
    second = agent(master.port, "w9")
    try:
        assert first.is_closed(timeout=5)
        assert second.call("ping") == "pong"
    finally:
        first.close()
        second.close()


# -- migration 4 -------------------------------------------------------------------------------


def test_migration_4_moves_agent_key_labels_and_gives_old_api_keys_admin_scope(
    database_url: str,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    from models import migrations
    from models.store import Store

    monkeypatch.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:3])
    old = Store(database_url, tmp_path)
    assert old.open() == 3
    insert = 'INSERT INTO "api_key" (key_id, role, name, secret_hash, created, revoked) VALUES '
    old.call(old.db.execute_sql, insert + "('a1', 'worker', 'render farm', 'h', 1.0, false)")
    old.call(old.db.execute_sql, insert + "('a2', 'api', 'bootstrap admin', 'h', 2.0, false)")
    old.close()
    monkeypatch.undo()
    new = Store(database_url, tmp_path)
    try:
        assert new.open() >= 4  # migration 4 and any later ones
        worker, api = new.load_keys()
        assert (worker.name, worker.label, worker.scope) == ("", "render farm", None)
        assert (api.name, api.label, api.scope) == ("bootstrap admin", "", "admin")
        assert new.call(new.db.table_exists, "audit_entry")
    finally:
        new.close()


def test_two_first_hellos_racing_with_one_key_bind_it_once(
    guarded: MasterProcess, admin: RpcClient
) -> None:
    key = admin.call("keys.create", role="worker")["key"]
    connections = [RpcClient(guarded.port) for _ in range(8)]
    try:
        # All requests are on the wire before any answer is read: the hellos race.
        for index, connection in enumerate(connections):
            connection.send_raw(
                orjson.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "hello",
                        "params": {
                            "role": "worker",
                            "name": f"racer-{index}",
                            "proto": 1,
                            "key": key,
                        },
                    }
                )
                + b"\n"
            )
        replies = [connection.read_reply() for connection in connections]
    finally:
        for connection in connections:
            connection.close()
    winners = [reply for reply in replies if "result" in reply]
    assert len(winners) == 1, replies
    assert {reply["error"]["data"]["reason"] for reply in replies if "error" in reply} == {
        "wrong_name"
    }
    [listed] = [k for k in admin.call("keys.list")["keys"] if k["role"] == "worker"]
    assert listed["name"] == winners[0]["result"]["name"]
