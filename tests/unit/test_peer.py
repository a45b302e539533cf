"""The sans-IO JSON-RPC peer (protocol/peer.py): bytes in, events out, calls matched to their
replies, the line limit, the end of a connection. Tables of inputs and the events they give;
every test runs on both JSON codecs."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.errors import ErrorCode, RpcError
from protocol.framing import LineTooLong
from protocol.peer import (
    CLOSED,
    TRANSITIONS,
    BadMessage,
    Closed,
    Event,
    Notification,
    PeerClosed,
    PeerState,
    Reply,
    Request,
    RpcPeer,
    StrayReply,
    Trigger,
)

pytestmark = [pytest.mark.fast, pytest.mark.usefixtures("json_backend")]


def events_of(peer: RpcPeer[Any], *chunks: bytes) -> list[Event]:
    found: list[Event] = []
    for chunk in chunks:
        peer.receive_data(chunk)
        while (event := peer.next_event()) is not None:
            found.append(event)
    return found


def summary(event: Event) -> tuple[Any, ...]:
    """An event as a comparable tuple (BadMessage's error by code and reason)."""
    if isinstance(event, BadMessage):
        return ("bad", event.error.code, event.error.reason, event.error.request_id)
    if isinstance(event, StrayReply):
        return ("stray", event.id, None if event.error is None else event.error.code)
    if isinstance(event, Reply):
        error = None if event.error is None else (event.error.code, event.error.reason)
        return ("reply", event.id, event.result, error, event.context)
    return (event,)


PING = b'{"jsonrpc":"2.0","id":7,"method":"ping"}\n'


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param([PING], [(Request(7, "ping", {}),)], id="a request"),
        pytest.param(
            [b'{"jsonrpc":"2.0","method":"heartbeat","params":{"running":["a"]}}\n'],
            [(Notification("heartbeat", {"running": ["a"]}),)],
            id="a notification",
        ),
        pytest.param(
            [b'{"jsonrpc":"2.0","id":1,"method":"ping","on_behalf_of":"alice"}\n'],
            [(Request(1, "ping", {}, "alice"),)],
            id="on behalf of a user",
        ),
        pytest.param([PING[:5], PING[5:20], PING[20:]], [(Request(7, "ping", {}),)], id="split"),
        pytest.param([PING[:-1] + b"\r\n"], [(Request(7, "ping", {}),)], id="crlf"),
        pytest.param([b"\n  \n\t\r\n" + PING + b"\n"], [(Request(7, "ping", {}),)], id="blanks"),
        pytest.param([PING * 3], [(Request(7, "ping", {}),)] * 3, id="three in one read"),
        pytest.param(
            [b"not json\n", PING],
            [("bad", ErrorCode.PARSE_ERROR, "bad_json", None), (Request(7, "ping", {}),)],
            id="bad json, then the next line",
        ),
        pytest.param(
            [b'{"jsonrpc":"1.0","id":3,"method":"ping"}\n'],
            [("bad", ErrorCode.INVALID_REQUEST, "bad_version", 3)],
            id="bad version keeps the id",
        ),
        pytest.param(
            [b'[{"jsonrpc":"2.0","method":"p"}]\n'],
            [("bad", ErrorCode.INVALID_REQUEST, "batch_not_supported", None)],
            id="batch",
        ),
        pytest.param(
            [b'{"jsonrpc":"2.0","id":9,"result":"late"}\n'],
            [("stray", 9, None)],
            id="a response to no call",
        ),
        pytest.param(
            [b'{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"m"}}\n'],
            [("stray", None, ErrorCode.PARSE_ERROR)],
            id="an error without an id",
        ),
        pytest.param([PING, b""], [(Request(7, "ping", {}),), (CLOSED,)], id="then eof"),
        pytest.param(
            [PING + b'{"jsonrpc":', b""], [(Request(7, "ping", {}),), (CLOSED,)], id="cut"
        ),
        pytest.param([b"", PING], [(CLOSED,)], id="nothing after eof"),
    ],
)
def test_bytes_in_events_out(chunks: list[bytes], expected: list[tuple[Any, ...]]) -> None:
    peer: RpcPeer[str] = RpcPeer()
    assert [summary(event) for event in events_of(peer, *chunks)] == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (b'{"jsonrpc":"2.0","id":2,"result":{"ok":1}}', ("reply", 2, {"ok": 1}, None, "second")),
        (
            b'{"jsonrpc":"2.0","id":1,"error":{"code":-32009,"message":"stale",'
            b'"data":{"reason":"stale_attempt"}}}',
            ("reply", 1, None, (ErrorCode.CONFLICT, "stale_attempt"), "first"),
        ),
        (b'{"jsonrpc":"2.0","id":"1","result":0}', ("stray", "1", None)),  # our ids are ints
        (b'{"jsonrpc":"2.0","id":3,"result":0}', ("stray", 3, None)),  # never sent
    ],
)
def test_replies_are_matched_to_calls_by_id(answer: bytes, expected: tuple[Any, ...]) -> None:
    peer: RpcPeer[str] = RpcPeer()
    assert peer.request("task.run", {"attempt": "a"}, "first")[0] == 1
    assert peer.request("ping", None, "second")[0] == 2
    (event,) = events_of(peer, answer + b"\n")
    assert summary(event) == expected
    assert peer.pending_calls == (1 if expected[0] == "reply" else 2)


def test_a_reply_comes_out_once_and_a_forgotten_call_is_stray() -> None:
    peer: RpcPeer[str] = RpcPeer()
    first, _ = peer.request("ping", None, "a")
    second, _ = peer.request("ping", None, "b")
    assert peer.forget(second) == "b"
    assert peer.forget(second) is None
    answers = b"".join(
        b'{"jsonrpc":"2.0","id":%d,"result":"pong"}\n' % call for call in (first, first, second)
    )
    assert [summary(event) for event in events_of(peer, answers)] == [
        ("reply", first, "pong", None, "a"),
        ("stray", first, None),
        ("stray", second, None),
    ]
    assert peer.pending_calls == 0


def test_what_is_sent_is_the_wire_format() -> None:
    peer: RpcPeer[None] = RpcPeer()
    assert peer.request("jobs.get", {"job_id": 3}, None, on_behalf_of="alice") == (
        1,
        b'{"jsonrpc":"2.0","id":1,"method":"jobs.get","params":{"job_id":3},'
        b'"on_behalf_of":"alice"}\n',
    )
    assert peer.request("ping", None, None)[1] == b'{"jsonrpc":"2.0","id":2,"method":"ping"}\n'
    assert peer.notification("heartbeat", {"running": []}) == (
        b'{"jsonrpc":"2.0","method":"heartbeat","params":{"running":[]}}\n'
    )
    assert peer.result(7, "pong") == b'{"jsonrpc":"2.0","id":7,"result":"pong"}\n'
    error = RpcError(ErrorCode.METHOD_NOT_FOUND, "no such method", "no_such_method")
    assert peer.error(None, error) == (
        b'{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"no such method",'
        b'"data":{"reason":"no_such_method"}}}\n'
    )


def test_closing_hands_back_the_calls_that_will_never_be_answered() -> None:
    peer: RpcPeer[str] = RpcPeer()
    peer.request("task.run", {}, "run")
    peer.request("task.cancel", {}, "cancel")
    assert events_of(peer, b"") == [CLOSED]
    assert peer.state is PeerState.CLOSED
    assert sorted(peer.close()) == ["cancel", "run"]
    assert peer.close() == []  # each context is given out once
    assert peer.next_event() is None
    for send in (
        lambda: peer.request("ping", None, "x"),
        lambda: peer.notification("heartbeat"),
        lambda: peer.result(1, {}),
        lambda: peer.error(1, RpcError(ErrorCode.INTERNAL_ERROR, "m")),
    ):
        with pytest.raises(PeerClosed) as closed:
            send()
        assert (closed.value.code, closed.value.reason) == (ErrorCode.CONFLICT, "offline")


def test_a_local_close_ignores_what_arrives_afterwards() -> None:
    peer: RpcPeer[str] = RpcPeer()
    assert peer.close() == []
    assert events_of(peer, PING, b"") == []


def test_a_line_over_the_limit_breaks_the_connection() -> None:
    peer: RpcPeer[str] = RpcPeer(max_line_bytes=64)
    peer.request("ping", None, "waiting")
    peer.receive_data(PING + b'{"jsonrpc":"2.0","method":"x","params":{"pad":"' + b"x" * 100)
    assert peer.next_event() == Request(7, "ping", {})
    for _ in range(2):  # and it stays broken
        with pytest.raises(LineTooLong) as info:
            peer.next_event()
        assert (info.value.code, info.value.reason) == (ErrorCode.TOO_LARGE, "line_too_long")
    assert peer.state is PeerState.BROKEN
    # The error that broke it can still be sent; nothing else can.
    assert b'"code":-32013' in peer.error(None, info.value)
    with pytest.raises(PeerClosed):
        peer.notification("heartbeat")
    assert peer.close() == ["waiting"]
    assert peer.state is PeerState.BROKEN


def test_a_line_of_exactly_the_limit_passes() -> None:
    line = b'{"jsonrpc":"2.0","method":"p","params":{"x":"'
    line += b"x" * (64 - len(line) - 3) + b'"}}'
    assert len(line) == 64
    peer: RpcPeer[None] = RpcPeer(max_line_bytes=64)
    (event,) = events_of(peer, line + b"\n")
    assert isinstance(event, Notification)


def test_the_table_covers_what_can_happen_and_a_connection_only_ends() -> None:
    # Lines are read only while open, so only an open peer can see one too long.
    possible = {(PeerState.OPEN, trigger) for trigger in Trigger} | {
        (state, trigger) for state in PeerState for trigger in (Trigger.EOF, Trigger.CLOSE)
    }
    assert set(TRANSITIONS) == possible
    for (state, _), after in TRANSITIONS.items():
        assert after is state or state is PeerState.OPEN
    assert PeerState.OPEN not in TRANSITIONS.values()


def test_ids_count_up_from_one_and_the_table_starts_empty() -> None:
    peer: RpcPeer[int] = RpcPeer()
    assert peer.pending_calls == 0
    assert [peer.request("ping", None, n)[0] for n in range(3)] == [1, 2, 3]
    assert peer.pending_calls == 3
    assert isinstance(events_of(peer, b"")[0], Closed)
