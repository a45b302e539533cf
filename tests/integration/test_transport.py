"""The one gevent transport (farmhand/transport.py, farmhand/sendqueue.py) over real TCP
sockets on 127.0.0.1: calls both ways, callbacks, timeouts, the end of a connection, the line
limit, and what the master's connections relied on: a slow consumer is cut off, a client's
senders wait instead (nothing lost), the writer greenlet exists only while there is something
to send."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent import socket as gsocket

import farmhand.sendqueue as sendqueue
from farmhand.transport import Overflow, RpcTransport
from protocol.errors import ErrorCode, RpcError, invalid_params
from protocol.peer import PeerClosed

pytestmark = pytest.mark.timeout(30)


def tcp_pair() -> tuple[gsocket.socket, gsocket.socket]:
    with gsocket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        left = gsocket.create_connection(listener.getsockname())
        right, _ = listener.accept()
    for sock in (left, right):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return left, right


def refuse(params: dict[str, Any]) -> Any:
    raise invalid_params("no such frame", "bad_frames")


def explode(params: dict[str, Any]) -> Any:
    raise ZeroDivisionError("a bug")


HANDLERS = {"echo": lambda params: params, "refuse": refuse, "explode": explode}


class Pair:
    """Two transports on either end of one TCP connection, each reading in a greenlet."""

    def __init__(self, **options: Any) -> None:
        left, right = tcp_pair()
        self.a = RpcTransport(left, name="a", **options)
        self.b = RpcTransport(right, name="b", handlers=HANDLERS, **options)
        self.readers = [gevent.spawn(self.a.serve), gevent.spawn(self.b.serve)]

    def close(self) -> None:
        for side in (self.a, self.b):
            side.close("test over")
        gevent.joinall(self.readers, timeout=5)
        for side in (self.a, self.b):
            side.finish()


@pytest.fixture
def pair() -> Iterator[Pair]:
    both = Pair()
    yield both
    both.close()


def test_a_call_waits_for_its_answer_and_errors_come_back_as_rpc_errors(pair: Pair) -> None:
    assert pair.a.call("echo", {"x": [1, "two"]}) == {"x": [1, "two"]}
    with pytest.raises(RpcError) as refused:
        pair.a.call("refuse", {})
    assert (refused.value.code, refused.value.reason) == (ErrorCode.INVALID_PARAMS, "bad_frames")
    with pytest.raises(RpcError) as unknown:
        pair.a.call("nope", {})
    assert unknown.value.code == ErrorCode.METHOD_NOT_FOUND
    with pytest.raises(RpcError) as internal:
        pair.a.call("explode", {})
    assert (internal.value.code, internal.value.message) == (
        ErrorCode.INTERNAL_ERROR,
        "explode: internal error",
    )
    assert pair.a.call("echo", {}) == {}  # and the connection goes on


def test_call_async_runs_its_callback_once_with_the_answer(pair: Pair) -> None:
    replies: list[tuple[Any, RpcError | None]] = []
    pair.a.call_async("echo", {"n": 1}, lambda result, error: replies.append((result, error)))
    pair.a.call_async("refuse", {}, lambda result, error: replies.append((result, error)))
    with gevent.Timeout(5):
        while len(replies) < 2:
            gevent.sleep(0.01)
    assert replies[0] == ({"n": 1}, None)
    assert replies[1][0] is None and replies[1][1] is not None
    assert replies[1][1].reason == "bad_frames"
    assert pair.a.peer.pending_calls == 0


def test_a_call_times_out_and_its_late_answer_is_ignored() -> None:
    slow = {"slow": lambda params: gevent.sleep(0.3) or "late"}
    left, right = tcp_pair()
    a = RpcTransport(left, name="a")
    b = RpcTransport(right, name="b", handlers=slow)
    b.spawn_requests = True
    readers = [gevent.spawn(a.serve), gevent.spawn(b.serve)]
    try:
        with pytest.raises(gevent.Timeout):
            a.call("slow", {}, timeout=0.05)
        assert a.peer.pending_calls == 0
        gevent.sleep(0.4)  # the late answer arrives: a stray reply, logged and dropped
        assert a.call("slow", {}, timeout=2) == "late"
    finally:
        for side in (a, b):
            side.close()
        gevent.joinall(readers, timeout=5)


def test_when_the_connection_ends_waiting_calls_fail_as_offline(pair: Pair) -> None:
    pair.b.handlers = {"hang": lambda params: gevent.sleep(30)}
    pair.b.spawn_requests = True
    replies: list[RpcError | None] = []
    pair.a.call_async("hang", {}, lambda result, error: replies.append(error))
    waiter = gevent.spawn(pair.a.call, "hang", {}, 30)
    gevent.sleep(0.1)
    pair.b.close("going away")
    waiter.join(timeout=5)
    assert isinstance(waiter.exception, PeerClosed) and waiter.exception.reason == "offline"
    assert len(replies) == 1 and isinstance(replies[0], PeerClosed)
    # Once closed, a call fails at once and a callback hears so at once.
    with pytest.raises(PeerClosed):
        pair.a.call("echo", {})
    later: list[RpcError | None] = []
    pair.a.call_async("echo", {}, lambda result, error: later.append(error))
    assert len(later) == 1 and later[0] is not None and later[0].reason == "offline"
    with pytest.raises(PeerClosed):
        pair.a.notify("heartbeat", {})


def test_a_line_over_the_limit_gets_the_error_and_ends_the_connection() -> None:
    left, right = tcp_pair()
    server = RpcTransport(right, name="server", max_line_bytes=1000)
    reader = gevent.spawn(server.serve)
    try:
        left.sendall(b'{"jsonrpc":"2.0","method":"x","params":{"pad":"' + b"x" * 2000)
        answer = b""
        with gevent.Timeout(5):
            while chunk := left.recv(65536):
                answer += chunk
        assert b'"code":-32013' in answer and b"line_too_long" in answer
        reader.join(timeout=5)
        assert server.close_reason == "line too long"
    finally:
        server.finish()
        left.close()


def test_a_peer_that_does_not_read_is_cut_off() -> None:
    left, right = tcp_pair()
    master_side = RpcTransport(left, name="slow peer", send_queue_bytes=64 * 1024)
    try:
        chunk = b'{"jsonrpc":"2.0","method":"event","params":{"data":"' + b"x" * 8000 + b'"}}\n'
        with gevent.Timeout(10):
            while not master_side.closed:  # the kernel's buffers fill, then our queue
                master_side.send_bytes(chunk)
                gevent.sleep(0)
        assert master_side.close_reason == "send queue full (slow consumer)"
    finally:
        master_side.finish()
        right.close()


def test_a_client_waits_for_room_instead_and_nothing_is_lost() -> None:
    left, right = tcp_pair()
    client = RpcTransport(left, name="client", send_queue_bytes=16 * 1024, overflow=Overflow.WAIT)
    total = 3000  # 12 MB: more than the kernel buffers between the two ends hold
    line = b'{"jsonrpc":"2.0","method":"n","params":{"pad":"' + b"y" * 4000 + b'"}}\n'
    sender = gevent.spawn(lambda: [client.send_bytes(line) for _ in range(total)])
    gevent.sleep(0.2)
    assert not sender.dead and not client.closed  # held back, not cut off
    assert client.queued_bytes <= 16 * 1024 + len(line)
    received = b""
    with gevent.Timeout(10):
        while received.count(b"\n") < total:
            received += right.recv(65536)
    sender.join(timeout=5)
    assert sender.successful() and received == line * total
    client.close()
    client.finish()
    right.close()


def test_the_writer_greenlet_comes_and_goes_with_the_traffic(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sendqueue, "WRITER_IDLE_S", 0.1)
    assert pair.a._writer is None  # nothing sent yet: no writer
    assert pair.a.call("echo", {}) == {}
    assert pair.a._writer is not None
    gevent.sleep(0.4)
    assert pair.a._writer is None and pair.b._writer is None  # idle: given back
    assert pair.a.call("echo", {"again": True}) == {"again": True}  # a new one when needed


def test_close_flushes_what_is_queued_first() -> None:
    left, right = tcp_pair()
    side = RpcTransport(left, name="side")
    for n in range(100):
        side.notify("n", {"i": n})
    side.close("done")
    received = b""
    with gevent.Timeout(5):
        while chunk := right.recv(65536):
            received += chunk
    assert received.count(b"\n") == 100 and received.endswith(b'{"i":99}}\n')
    side.finish()
    right.close()
