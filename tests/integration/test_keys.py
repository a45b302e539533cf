"""Keys against a real master started with `--require-key` (docs/security.md): no key,
no service; keys are per role, shown once, stored hashed, and revocation ends their sessions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import MasterProcess, RpcClient, RpcFailure

UNAUTHORIZED = -32001


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[MasterProcess]:
    process = MasterProcess(tmp_path / "var", "--require-key")
    yield process
    process.stop()


def admin_key(master: MasterProcess) -> str:
    return (master.data_dir / "admin.key").read_text().strip()


def hello(port: int, role: str, name: str, key: str | None) -> RpcClient:
    connection = RpcClient(port)
    params = {"role": role, "name": name, "proto": 1}
    if key is not None:
        params["key"] = key
    connection.call("hello", **params)
    return connection


def refused(connection: RpcClient, method: str, **params: object) -> RpcFailure:
    with pytest.raises(RpcFailure) as failure:
        connection.call(method, **params)
    assert failure.value.code == UNAUTHORIZED, failure.value.error
    assert failure.value.reason
    return failure.value


@pytest.fixture
def admin(guarded: MasterProcess) -> Iterator[RpcClient]:
    with hello(guarded.port, "api", "", admin_key(guarded)) as connection:
        yield connection


def test_without_a_key_nothing_is_served(guarded: MasterProcess) -> None:
    with RpcClient(guarded.port) as connection:
        failure = refused(connection, "hello", role="worker", name="w1", proto=1)
        assert failure.reason == "key_required"
        for method in ("ping", "clients.list", "status", "keys.list", "subscribe"):
            params = {"topics": ["clients"]} if method == "subscribe" else {}
            refused(connection, method, **params)
        refused(connection, "clients.disable", select="all")
        # Refusals are replies, not disconnects.
        refused(connection, "ping")


def test_an_invalid_key_is_refused(guarded: MasterProcess) -> None:
    real = admin_key(guarded)
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    for key in ("nonsense", "fhk_", "fhk_abc_def", forged):
        with RpcClient(guarded.port) as connection:
            failure = refused(connection, "hello", role="api", name="", proto=1, key=key)
            assert failure.reason == "bad_key"
            refused(connection, "ping")


def test_the_master_writes_an_admin_key_that_opens_the_api(guarded: MasterProcess) -> None:
    key_file = guarded.data_dir / "admin.key"
    assert key_file.stat().st_mode & 0o077 == 0, "admin.key must be readable by its owner only"
    with hello(guarded.port, "api", "", admin_key(guarded)) as admin:
        assert admin.call("ping") == "pong"
        # An agent key's name is the client it is bound to; free text goes in its label.
        created = admin.call("keys.create", role="worker", name="render-01", label="render farm")
        assert created["key"].startswith("fhk_")
        assert created["role"] == "worker"
        assert created["name"] == "render-01"
        assert created["label"] == "render farm"
        assert created["revoked"] is False
        assert created["key_id"] in created["key"]
        assert admin.call("clients.list")["clients"] == []


def test_a_restarted_master_keeps_its_admin_key(tmp_path: Path) -> None:
    first = MasterProcess(tmp_path / "var", "--require-key")
    key = admin_key(first)
    first.stop()
    second = MasterProcess(tmp_path / "var", "--require-key")
    try:
        assert admin_key(second) == key
        with hello(second.port, "api", "", key) as admin:
            assert admin.call("ping") == "pong"
    finally:
        second.stop()


def test_a_worker_key_lets_a_worker_say_hello(guarded: MasterProcess, admin: RpcClient) -> None:
    key = admin.call("keys.create", role="worker")["key"]
    with hello(guarded.port, "worker", "w1", key) as worker:
        assert worker.call("ping") == "pong"
        rows = admin.call("clients.list", select="w1")["clients"]
        assert [(row["name"], row["online"]) for row in rows] == [("w1", True)]


def test_a_worker_key_cannot_say_hello_as_another_role(
    guarded: MasterProcess, admin: RpcClient
) -> None:
    key = admin.call("keys.create", role="worker")["key"]
    for role in ("hardware", "api", "node"):
        with RpcClient(guarded.port) as connection:
            failure = refused(connection, "hello", role=role, name="x1", proto=1, key=key)
            assert failure.reason == "wrong_role"
            refused(connection, "ping")
    assert admin.call("clients.list")["clients"] == []


def test_an_agent_session_cannot_call_admin_methods(
    guarded: MasterProcess, admin: RpcClient
) -> None:
    key = admin.call("keys.create", role="worker")["key"]
    with hello(guarded.port, "worker", "w1", key) as worker:
        # An agent key reads nothing of the farm either (issue 9.4): only its own reports.
        refused(worker, "clients.list")
        refused(worker, "clients.disable", select="all")
        refused(worker, "clients.enable", select="all")
        refused(worker, "clients.forget", name="w1")
        refused(worker, "keys.create", role="api")
        refused(worker, "keys.list")
        assert worker.call("ping") == "pong"
    assert admin.call("clients.list", select="disabled")["clients"] == []


def test_keys_list_shows_no_secrets(admin: RpcClient) -> None:
    created = admin.call("keys.create", role="hardware", name="keg1", label="keg box")
    secret = created["key"].rsplit("_", 1)[1]
    listed = admin.call("keys.list")["keys"]
    mine = [key for key in listed if key["key_id"] == created["key_id"]]
    assert mine == [{k: v for k, v in created.items() if k != "key"}]
    for key in listed:
        assert "key" not in key
        assert "secret_hash" not in key
    assert secret not in str(listed)


def test_a_revoked_key_stops_working_and_its_session_is_closed(
    guarded: MasterProcess, admin: RpcClient
) -> None:
    created = admin.call("keys.create", role="worker", name="w1", label="soon gone")
    with hello(guarded.port, "worker", "w1", created["key"]) as worker:
        revoked = admin.call("keys.revoke", key_id=created["key_id"])
        assert revoked["revoked"] is True
        assert worker.is_closed(), "the session using a revoked key must be closed"
    with RpcClient(guarded.port) as again:
        failure = refused(again, "hello", role="worker", name="w1", proto=1, key=created["key"])
        assert failure.reason == "bad_key"
    listed = {key["key_id"]: key for key in admin.call("keys.list")["keys"]}
    assert listed[created["key_id"]]["revoked"] is True
    # The admin's own session, on another key, is untouched.
    assert admin.call("ping") == "pong"


def test_revoking_an_unknown_key_is_not_found(admin: RpcClient) -> None:
    with pytest.raises(RpcFailure) as failure:
        admin.call("keys.revoke", key_id="000000000000")
    assert failure.value.code == -32004


def test_keys_create_checks_the_role(admin: RpcClient) -> None:
    with pytest.raises(RpcFailure) as failure:
        admin.call("keys.create", role="overlord")
    assert failure.value.code == -32602


def test_keys_are_stored_hashed(guarded: MasterProcess, admin: RpcClient) -> None:
    keys = [admin_key(guarded)] + [
        admin.call("keys.create", role=role)["key"] for role in ("worker", "hardware", "api")
    ]
    secrets = [key.rsplit("_", 1)[1] for key in keys]
    database = guarded.data_dir / "farmhand.db"
    # Through SQLite (which also reads the WAL): no secret in any table.
    with sqlite3.connect(database) as db:
        dump = "\n".join(db.iterdump())
    assert "api_key" in dump
    # And in the raw bytes of the database and its WAL.
    raw = b"".join(path.read_bytes() for path in database.parent.glob("farmhand.db*"))
    for secret in secrets:
        assert secret not in dump
        assert secret.encode() not in raw
    for key in keys:
        assert key.split("_")[1] in dump, "the key id is stored in clear to find the record"


def test_without_require_key_loopback_peers_need_no_key(tmp_path: Path) -> None:
    master = MasterProcess(tmp_path / "var")
    try:
        assert not (master.data_dir / "admin.key").exists()
        with RpcClient(master.port) as connection:
            assert connection.call("ping") == "pong"
            created = connection.call("keys.create", role="worker")
            assert created["key"].startswith("fhk_")
        with RpcClient(master.port) as worker:
            worker.call("hello", role="worker", name="w1", proto=1)
            # A trusted loopback peer may steer the farm even after an agent hello.
            assert worker.call("clients.disable", select="w1")["changed"] == ["w1"]
        with RpcClient(master.port) as connection:
            failure = refused(connection, "hello", role="worker", name="w2", proto=1, key="bad")
            assert failure.reason == "bad_key"
    finally:
        master.stop()
