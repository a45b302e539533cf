"""The JSON-RPC dialect against a real master (docs/protocol.md): bad input gets an error reply and
the connection stays open; an over-long line is the one error that closes it."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import pytest

from protocol.peer import Reply, RpcPeer
from tests.support import PROMPT, ConsoleClient, MasterProcess, RpcClient, agent


def send_line(client: RpcClient, line: bytes) -> dict[str, Any]:
    client.send_raw(line + b"\n")
    return client.read_reply()


def assert_error(reply: dict[str, Any], code: int, reason: str | None = None) -> dict[str, Any]:
    assert reply["jsonrpc"] == "2.0"
    error = reply["error"]
    assert error["code"] == code, reply
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["data"]["reason"], str) and error["data"]["reason"]
    if reason is not None:
        assert error["data"]["reason"] == reason, reply
    return error


def assert_still_open(client: RpcClient) -> None:
    assert client.call("ping") == "pong"


@pytest.mark.parametrize(
    ("line", "code", "reply_id"),
    [
        pytest.param(b'{"jsonrpc":"2.0","id":7,"method":', -32700, None, id="bad json"),
        pytest.param(b"{not json at all}", -32700, None, id="garbage"),
        pytest.param(
            b'{"jsonrpc":"2.0","id":7,"method":"ping","params":{"x":"\xff\xfe"}}',
            -32700,
            None,
            id="invalid utf-8",
        ),
        pytest.param(b'{"id":7,"method":"ping"}', -32600, 7, id="missing jsonrpc"),
        pytest.param(b'{"jsonrpc":"1.0","id":7,"method":"ping"}', -32600, 7, id="wrong jsonrpc"),
        pytest.param(b'{"jsonrpc":"2.0","id":7,"method":42}', -32600, 7, id="non-string method"),
        pytest.param(b'{"jsonrpc":"2.0","id":7}', -32600, 7, id="neither request nor response"),
        pytest.param(
            b'{"jsonrpc":"2.0","id":7,"method":"ping","params":[1,2]}',
            -32602,
            7,
            id="params array",
        ),
        pytest.param(
            b'{"jsonrpc":"2.0","id":7,"method":"ping","params":"x"}',
            -32602,
            7,
            id="params string",
        ),
    ],
)
def test_bad_message_gets_an_error_and_the_connection_stays_open(
    master: MasterProcess, line: bytes, code: int, reply_id: Any
) -> None:
    with RpcClient(master.port) as client:
        reply = send_line(client, line)
        assert_error(reply, code)
        assert reply["id"] == reply_id
        assert_still_open(client)


def test_a_batch_is_refused_with_one_error_and_the_connection_stays_open(
    master: MasterProcess,
) -> None:
    # A batch starts with `[`, which would pick the console dialect: so it follows a request.
    with RpcClient(master.port) as client:
        assert_still_open(client)
        batch = (
            b'[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]'
        )
        reply = send_line(client, batch)
        assert_error(reply, -32600, "batch_not_supported")
        assert reply["id"] is None
        assert_still_open(client)


def test_unknown_method(master: MasterProcess) -> None:
    with RpcClient(master.port) as client:
        error = assert_error(client.request("no.such.method"), -32601)
        assert "no.such.method" in error["message"]
        assert_still_open(client)


@pytest.mark.parametrize(
    ("method", "params", "reason"),
    [
        pytest.param("ping", {"bogus": 1}, "unknown_param", id="unknown param"),
        pytest.param("clients.enable", {}, "missing_param", id="missing param"),
        pytest.param("clients.list", {"select": 5}, "bad_param", id="wrong type"),
        pytest.param("clients.forget", {"name": ["a"]}, "bad_param", id="list for string"),
        pytest.param("subscribe", {"topics": "clients"}, "bad_param", id="string for list"),
        pytest.param(
            "hello", {"role": "worker", "name": "w", "proto": "1"}, "bad_param", id="proto str"
        ),
        pytest.param("hello", {"role": "wizard", "name": "w"}, "bad_role", id="bad role"),
        pytest.param("hello", {"role": "worker", "name": "a b"}, "bad_name", id="bad name"),
        pytest.param(
            "hello", {"role": "worker", "name": "w", "proto": 99}, "bad_proto", id="proto"
        ),
    ],
)
def test_bad_params_get_32602_with_a_reason(
    master: MasterProcess, method: str, params: dict[str, Any], reason: str
) -> None:
    with RpcClient(master.port) as client:
        error = assert_error(client.request(method, **params), -32602, reason)
        assert method in error["message"] or reason in ("bad_role",)
        assert_still_open(client)


def test_a_notification_gets_no_reply_even_when_it_fails(master: MasterProcess) -> None:
    with RpcClient(master.port) as client:
        client.notify("no.such.method", x=1)
        client.notify("ping", bogus=True)
        # The next reply is the ping's: nothing was sent for the notifications.
        reply = client.request("ping")
        assert reply == {"jsonrpc": "2.0", "id": reply["id"], "result": "pong"}
        assert not client.events


def test_blank_lines_are_ignored(master: MasterProcess) -> None:
    with RpcClient(master.port) as client:
        assert_still_open(client)
        client.send_raw(b"\n   \n\n")
        assert_still_open(client)


def test_string_ids_are_echoed(master: MasterProcess) -> None:
    with RpcClient(master.port) as client:
        reply = send_line(client, b'{"jsonrpc":"2.0","id":"abc","method":"ping"}')
        assert reply == {"jsonrpc": "2.0", "id": "abc", "result": "pong"}


def test_a_line_over_one_mib_gets_32013_then_the_connection_is_closed(
    master: MasterProcess,
) -> None:
    with RpcClient(master.port) as client:
        assert_still_open(client)
        huge = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"a" * (1 << 20)
        # The master may close before it has read everything: the reply is what counts.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            client.send_raw(huge + b'"}}\n')
        assert_error(client.read_reply(), -32013, "line_too_long")
        assert client.is_closed()
    with RpcClient(master.port) as fresh:
        assert_still_open(fresh)


def test_a_partial_line_over_one_mib_is_refused_before_its_newline(
    master: MasterProcess,
) -> None:
    with RpcClient(master.port) as client:
        assert_still_open(client)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            client.send_raw(
                b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"a" * (1 << 20)
            )
        assert_error(client.read_reply(), -32013, "line_too_long")
        assert client.is_closed()
    with RpcClient(master.port) as fresh:
        assert_still_open(fresh)


def test_a_line_just_under_the_limit_is_served(master: MasterProcess) -> None:
    with RpcClient(master.port) as client:
        padding = "a" * ((1 << 20) - 200)
        error = assert_error(client.request("ping", pad=padding), -32602, "unknown_param")
        assert "pad" in error["message"]
        assert_still_open(client)


def test_ping(master: MasterProcess) -> None:
    with RpcClient(master.port) as client:
        assert client.call("ping") == "pong"


def test_status_reports_version_listen_address_and_counts(master: MasterProcess) -> None:
    with agent(master.port, "w1") as _, RpcClient(master.port) as client:
        status = client.call("status")
        assert status["proto"] == 1
        assert isinstance(status["version"], str) and status["version"]
        assert status["listen"] == master.address
        assert status["started"].endswith("Z") or status["started"].endswith("+00:00")
        assert status["uptime_s"] >= 0
        assert status["database"]["backend"] == "sqlite" and status["database"]["healthy"]
        assert status["clients"]["total"] == 1
        assert status["clients"]["online"] == 1
        assert status["clients"]["by_role"]["worker"] == {"online": 1, "total": 1}
        assert status["connections"]["rpc"] == 2
        assert status["connections"]["console"] == 0


def test_subscribe_to_clients_streams_online_offline_enabled_disabled(
    master: MasterProcess,
) -> None:
    with RpcClient(master.port) as watcher:
        assert watcher.call("subscribe", topics=["clients"]) == {"topics": ["clients"]}

        def change(kind: str, name: str = "w1") -> Any:
            return lambda data: (
                data["topic"] == "clients"
                and data["data"]["change"] == kind
                and data["data"]["client"]["name"] == name
            )

        worker = agent(master.port, "w1")
        online = watcher.wait_event(change("online"))
        assert online["data"]["client"]["online"] is True
        assert online["data"]["client"]["status"] == "idle"

        assert watcher.call("clients.disable", select="w1")["changed"] == ["w1"]
        disabled = watcher.wait_event(change("disabled"))
        assert disabled["data"]["client"]["enabled"] is False

        assert watcher.call("clients.enable", select="w1")["changed"] == ["w1"]
        enabled = watcher.wait_event(change("enabled"))
        assert enabled["data"]["client"]["enabled"] is True

        worker.close()
        offline = watcher.wait_event(change("offline"))
        assert offline["data"]["client"]["online"] is False
        assert offline["data"]["client"]["status"] == "offline"


def test_events_are_json_rpc_notifications_named_event(master: MasterProcess) -> None:
    with RpcClient(master.port) as watcher:
        watcher.call("subscribe", topics=["clients"])
        with agent(master.port, "w2"):
            watcher.wait_event(lambda data: data["data"]["change"] == "online")
    # wait_event keeps only the params; check the raw frame once, on a fresh subscriber.
    with RpcClient(master.port) as raw:
        raw.call("subscribe", topics=["clients"])
        with agent(master.port, "w3"):
            message = raw.read_message()
            while message.get("params", {}).get("data", {}).get("change") != "online":
                message = raw.read_message()
        assert message["jsonrpc"] == "2.0"
        assert message["method"] == "event"
        assert "id" not in message
        assert set(message["params"]) == {"topic", "data"}


def test_subscribe_to_an_unknown_topic_is_32602(master: MasterProcess) -> None:
    with RpcClient(master.port) as client:
        assert_error(client.request("subscribe", topics=["nonsense"]), -32602, "unknown_topic")
        assert_error(client.request("subscribe", topics=["log:"]), -32602, "unknown_topic")
        assert_still_open(client)
        assert client.call("subscribe", topics=["jobs", "log:42"]) == {"topics": ["jobs", "log:42"]}


def test_unsubscribed_connections_get_no_events(master: MasterProcess) -> None:
    with RpcClient(master.port) as watcher, RpcClient(master.port) as bystander:
        watcher.call("subscribe", topics=["clients"])
        watcher.call("unsubscribe", topics=["clients"])
        bystander.call("subscribe", topics=["clients"])
        with agent(master.port, "w4"):
            bystander.wait_event(lambda data: data["data"]["change"] == "online")
        assert watcher.call("ping") == "pong"
        assert not watcher.events


def test_raw_messages_are_one_json_object_per_line(master: MasterProcess) -> None:
    with RpcClient(master.port) as client:
        client.send_raw(
            orjson.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
            + b"\n"
            + orjson.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"})
            + b"\n"
        )
        first, second = client.read_reply(), client.read_reply()
        assert (first["id"], second["id"]) == (1, 2)
        assert first["result"] == second["result"] == "pong"


def test_a_client_that_speaks_after_the_dialect_wait_still_gets_json_rpc(
    master: MasterProcess,
) -> None:
    # Silent past the wait, it is sent the console's banner and prompt; its first byte `{`
    # still picks JSON-RPC, and the prompt's line is ended before the first JSON line.
    console = ConsoleClient(master.port)  # returns once the banner and prompt arrived
    try:
        assert console.banner.startswith("farmhand master ")
        console.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n')
        # The end of the prompt's line, then the reply on a line of its own.
        prompt_end, line = console.read_until(b"}\n").split(b"\r\n", 1)
        assert prompt_end == b""
        reply = orjson.loads(line + b"}")
        assert reply == {"jsonrpc": "2.0", "id": 1, "result": "pong"}
        # The one JSON-RPC peer skips the banner lines before the first message.
        peer: RpcPeer[str] = RpcPeer()
        peer.request("ping", None, "the ping")
        peer.receive_data(console.banner.encode() + PROMPT + b"\r\n" + orjson.dumps(reply) + b"\n")
        event = peer.next_event()
        assert isinstance(event, Reply) and (event.result, event.context) == ("pong", "the ping")
    finally:
        console.close()
