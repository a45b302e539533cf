"""Users, tokens and presence against a real master (docs/devices.md):
creating users, scrypt passwords never stored in plain, assigning and revoking tokens, who is
present at which reader, and the errors a bad request gets (the connection stays usable)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ConsoleClient, MasterProcess, RpcClient, RpcFailure, agent, wait_for

pytestmark = pytest.mark.timeout(30)

PASSWORD = "correct horse battery staple"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[MasterProcess]:
    """A master at the default 5 s heartbeat, so silent fake agents stay online."""
    process = MasterProcess(tmp_path / "var")
    yield process
    process.stop()


@pytest.fixture
def admin(hub: MasterProcess) -> Iterator[RpcClient]:
    with RpcClient(hub.port) as client:
        yield client


def error_of(client: RpcClient, method: str, **params: Any) -> dict[str, Any]:
    reply = client.request(method, **params)
    assert "error" in reply, reply
    error: dict[str, Any] = reply["error"]
    return error


def usernames(admin: RpcClient) -> list[str]:
    return [user["username"] for user in admin.call("users.list")["users"]]


# -- users -------------------------------------------------------------------------------------


def test_users_create_and_list(admin: RpcClient) -> None:
    alice = admin.call("users.create", username="alice", display_name="Alice A.", password=PASSWORD)
    assert alice["username"] == "alice" and alice["display_name"] == "Alice A."
    assert alice["enabled"] is True and alice["admin"] is False
    assert alice["has_password"] is True
    assert "password" not in alice and "password_hash" not in alice
    bob = admin.call("users.create", username="bob", admin=True)
    assert bob["display_name"] == "bob"  # defaults to the username
    assert bob["admin"] is True and bob["has_password"] is False
    assert admin.call("users.list")["users"] == [alice, bob]


def test_console_users(hub: MasterProcess, admin: RpcClient) -> None:
    admin.call("users.create", username="alice", display_name="Alice Liddell")
    with ConsoleClient(hub.port) as console:
        assert console.command("users add bob Bob Builder") == "created user bob"
        text = console.command("users")
        assert "alice" in text and "Alice Liddell" in text
        assert "bob" in text and "Bob Builder" in text
        assert "2 users" in text
    assert usernames(admin) == ["alice", "bob"]


def test_a_duplicate_user_is_a_conflict(admin: RpcClient) -> None:
    admin.call("users.create", username="alice")
    error = error_of(admin, "users.create", username="alice", display_name="Another")
    assert error["code"] == -32009
    assert error["data"]["reason"] == "user_exists"
    assert usernames(admin) == ["alice"]
    assert admin.call("ping") == "pong"


@pytest.mark.parametrize("username", ["", " alice", "al ice", "-alice", "alice!", "x" * 65])
def test_a_bad_username_is_refused(admin: RpcClient, username: str) -> None:
    error = error_of(admin, "users.create", username=username)
    assert error["code"] == -32602
    assert usernames(admin) == []
    assert admin.call("ping") == "pong"


def test_a_short_password_is_refused(admin: RpcClient) -> None:
    error = error_of(admin, "users.create", username="alice", password="short")
    assert error["code"] == -32602
    assert error["data"]["reason"] == "weak_password"
    assert usernames(admin) == []
    assert admin.call("users.create", username="alice", password="long enough")["has_password"]


def test_users_authenticate(admin: RpcClient) -> None:
    alice = admin.call("users.create", username="alice", password=PASSWORD)
    admin.call("users.create", username="nopass")
    assert admin.call("users.authenticate", username="alice", password=PASSWORD) == alice
    for username, password in [
        ("alice", "wrong password"),
        ("alice", PASSWORD.upper()),
        ("alice", ""),
        ("nobody", PASSWORD),
        ("nopass", ""),
        ("nopass", PASSWORD),
    ]:
        error = error_of(admin, "users.authenticate", username=username, password=password)
        assert error["code"] == -32001, (username, password)
    assert admin.call("ping") == "pong"


def test_passwords_are_stored_hashed(hub: MasterProcess, admin: RpcClient) -> None:
    admin.call("users.create", username="alice", password=PASSWORD)
    admin.call("users.create", username="bob", password=PASSWORD)
    [db_path] = hub.data_dir.glob("*.db")
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        columns = [row["name"] for row in db.execute("PRAGMA table_info(user)")]
        rows = [dict(row) for row in db.execute("SELECT * FROM user ORDER BY username")]
    assert [row["username"] for row in rows] == ["alice", "bob"]
    hashes = [row["password_hash"] for row in rows]
    assert all(h.startswith("$scrypt$ln=17,r=8,p=1$") for h in hashes)  # OWASP's cost
    assert hashes[0] != hashes[1]  # salted
    for row in rows:
        assert all(PASSWORD not in str(row[column]) for column in columns)
    # nor anywhere on disk: database, its WAL, the log
    for path in hub.data_dir.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


# -- tokens ------------------------------------------------------------------------------------


def test_tokens_assign_list_and_revoke(hub: MasterProcess, admin: RpcClient) -> None:
    admin.call("users.create", username="alice")
    admin.call("users.create", username="bob")
    card = admin.call("tokens.assign", reader="core.rfid", token="DEADBEEF", username="alice")
    assert card["reader"] == "core.rfid" and card["username"] == "alice"
    assert card["token"] == "deadbeef"  # lower-case hex, as agents report it
    button = admin.call(
        "tokens.assign", reader="core.onewire", token="0000000012345678", username="bob"
    )
    assert admin.call("tokens.list")["tokens"] == [button, card]  # by reader, token

    # reassigning moves the token to its new owner
    moved = admin.call("tokens.assign", reader="core.rfid", token="deadbeef", username="bob")
    assert moved["id"] == card["id"] and moved["username"] == "bob"

    with ConsoleClient(hub.port) as console:
        text = console.command("tokens")
        assert "deadbeef" in text and "0000000012345678" in text and "bob" in text
        assert "unknown" not in text
        reply = console.command("tokens assign core.rfid cafe alice")
        assert reply == "token cafe at core.rfid now belongs to alice"
        assert console.command("tokens revoke core.rfid cafe") == "token cafe at core.rfid revoked"

    assert admin.call("tokens.revoke", reader="core.rfid", token="deadbeef") == {}
    assert admin.call("tokens.list")["tokens"] == [button]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"reader": "core.rfid", "token": "not-hex", "username": "alice"}, -32602),
        ({"reader": "core.rfid", "token": "", "username": "alice"}, -32602),
        ({"reader": "core.rfid", "token": "0x1234", "username": "alice"}, -32602),
        ({"reader": "bad reader", "token": "1234", "username": "alice"}, -32602),
        ({"reader": "core.rfid", "token": 1234, "username": "alice"}, -32602),
        ({"reader": "core.rfid", "token": "1234"}, -32602),
        ({"reader": "core.rfid", "token": "1234", "username": "nobody"}, -32004),
    ],
)
def test_tokens_assign_refuses(admin: RpcClient, params: dict[str, Any], code: int) -> None:
    admin.call("users.create", username="alice")
    assert error_of(admin, "tokens.assign", **params)["code"] == code
    assert admin.call("tokens.list")["tokens"] == []
    assert admin.call("ping") == "pong"


def test_revoking_an_unassigned_token_is_not_found(admin: RpcClient) -> None:
    error = error_of(admin, "tokens.revoke", reader="core.rfid", token="1234")
    assert error["code"] == -32004
    assert error_of(admin, "tokens.revoke", reader="core.rfid", token="zz")["code"] == -32602
    assert admin.call("ping") == "pong"


def test_a_revoked_token_is_unknown_again(hub: MasterProcess, admin: RpcClient) -> None:
    admin.call("users.create", username="alice")
    admin.call("tokens.assign", reader="core.rfid", token="1234", username="alice")
    with agent(hub.port, "door1", role="auth") as door1:
        assert door1.call("token.update", reader="core.rfid", token="1234", present=True) == {
            "username": "alice"
        }
        admin.call("tokens.revoke", reader="core.rfid", token="1234")
        result = door1.call("token.update", reader="core.rfid", token="1234", present=True)
        assert result == {"username": None}
    [seen] = admin.call("tokens.list")["unknown"]
    assert (seen["agent"], seen["reader"], seen["token"], seen["count"]) == (
        "door1",
        "core.rfid",
        "1234",
        1,
    )


# -- presence ----------------------------------------------------------------------------------


def test_presence_shows_who_is_at_which_reader(hub: MasterProcess, admin: RpcClient) -> None:
    admin.call("subscribe", topics=["presence"])
    admin.call("users.create", username="alice")
    admin.call("users.create", username="bob")
    admin.call("tokens.assign", reader="core.onewire", token="0000000012345678", username="alice")
    admin.call("tokens.assign", reader="core.rfid", token="b0b", username="bob")
    assert admin.call("presence.list")["presence"] == []

    with (
        agent(hub.port, "door1", role="auth") as door1,
        agent(hub.port, "keg1", role="hardware") as keg1,
    ):
        door1.call("token.update", reader="core.onewire", token="0000000012345678", present=True)
        arrived = admin.wait_event(lambda e: e["topic"] == "presence")["data"]
        assert arrived["change"] == "arrived"
        assert (arrived["agent"], arrived["reader"], arrived["username"]) == (
            "door1",
            "core.onewire",
            "alice",
        )
        assert arrived["captive"] is True

        keg1.call("token.update", reader="core.rfid", token="b0b", present=True)
        keg1.call("token.update", reader="core.rfid", token="b0b", present=False)
        admin.wait_event(lambda e: e["topic"] == "presence" and e["data"]["username"] == "bob")
        present = admin.call("presence.list")["presence"]
        assert [(p["agent"], p["reader"], p["username"], p["token"]) for p in present] == [
            ("door1", "core.onewire", "alice", "0000000012345678"),
            ("keg1", "core.rfid", "bob", "b0b"),  # an RFID session outlives the swipe
        ]
        with ConsoleClient(hub.port) as console:
            text = console.command("presence")
            assert "alice" in text and "door1" in text and "bob" in text

        # lifting a captive iButton: alice leaves
        door1.call("token.update", reader="core.onewire", token="0000000012345678", present=False)
        left = admin.wait_event(lambda e: e["topic"] == "presence")["data"]
        assert (left["change"], left["username"], left["agent"]) == ("left", "alice", "door1")
        assert [p["username"] for p in admin.call("presence.list")["presence"]] == ["bob"]

        # an unknown token is announced, but nobody is present for it
        door1.call("token.update", reader="core.rfid", token="ffff", present=True)
        unknown = admin.wait_event(lambda e: e["topic"] == "presence")["data"]
        assert unknown == {
            "change": "unknown_token",
            "agent": "door1",
            "reader": "core.rfid",
            "token": "ffff",
        }
        assert [p["username"] for p in admin.call("presence.list")["presence"]] == ["bob"]


def test_unknown_tokens_are_counted_per_reader(hub: MasterProcess, admin: RpcClient) -> None:
    with agent(hub.port, "door1", role="auth") as door1:
        for _ in range(3):
            door1.call("token.update", reader="core.rfid", token="abc", present=True)
        door1.call("token.update", reader="core.onewire", token="abc", present=True)
    unknown = admin.call("tokens.list")["unknown"]
    counts = {(u["reader"], u["token"]): (u["agent"], u["count"]) for u in unknown}
    assert counts == {("core.rfid", "abc"): ("door1", 3), ("core.onewire", "abc"): ("door1", 1)}
    for seen in unknown:
        assert seen["first_seen"] <= seen["last_seen"]


def test_people_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    first = MasterProcess(data_dir)
    try:
        with RpcClient(first.port) as admin:
            admin.call("users.create", username="alice", password=PASSWORD, admin=True)
            admin.call("tokens.assign", reader="core.rfid", token="a11ce", username="alice")
            users = admin.call("users.list")["users"]
            tokens = admin.call("tokens.list")["tokens"]
    finally:
        assert first.stop() == 0
    second = MasterProcess(data_dir)
    try:
        with RpcClient(second.port) as admin:
            assert admin.call("users.list")["users"] == users
            assert admin.call("tokens.list")["tokens"] == tokens
            assert admin.call("users.authenticate", username="alice", password=PASSWORD)
            with pytest.raises(RpcFailure) as failure:
                admin.call("users.authenticate", username="alice", password="not it at all")
            assert failure.value.code == -32001
            bob = admin.call("users.create", username="bob")
            assert bob["id"] > users[0]["id"]
            with agent(second.port, "door1", role="auth") as door1:
                result = door1.call("token.update", reader="core.rfid", token="a11ce", present=True)
                assert result == {"username": "alice"}
            wait_for(lambda: admin.call("presence.list")["presence"], timeout=5)
    finally:
        assert second.stop() == 0
