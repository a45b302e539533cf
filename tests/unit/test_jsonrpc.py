"""JSON-RPC 2.0 messages: what parses into which message, which error each bad line gets; every
test runs on both JSON codecs (orjson, and the stdlib's json for the stdlib-only client)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ErrorCode, ProtocolError, RpcError
from protocol.jsonrpc import (
    ErrorResponse,
    Message,
    Notification,
    Request,
    Response,
    encode,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    parse_message,
)

pytestmark = pytest.mark.usefixtures("json_backend")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            b'{"jsonrpc":"2.0","id":1,"method":"clients.list","params":{"select":"all"}}',
            Request(1, "clients.list", {"select": "all"}),
        ),
        ('{"jsonrpc":"2.0","id":"a-1","method":"ping"}', Request("a-1", "ping", {})),
        (b'{"jsonrpc":"2.0","id":0,"method":"ping","params":null}', Request(0, "ping", {})),
        (b'{"jsonrpc":"2.0","id":-7,"method":"ping","params":{}}', Request(-7, "ping", {})),
        (b'{"jsonrpc":"2.0","method":"heartbeat"}', Notification("heartbeat", {})),
        (
            b'{"jsonrpc":"2.0","method":"task.output","params":{"attempt":3,"data":"x\\n"}}',
            Notification("task.output", {"attempt": 3, "data": "x\n"}),
        ),
        (b'{"jsonrpc":"2.0","id":1,"result":"pong"}', Response(1, "pong")),
        (b'{"jsonrpc":"2.0","id":"k","result":null}', Response("k", None)),
        (b'{"jsonrpc":"2.0","id":2,"result":[1,{"a":true}]}', Response(2, [1, {"a": True}])),
        (b' {"id":1, "result":{}, "jsonrpc":"2.0"} ', Response(1, {})),
    ],
)
def test_valid_lines_parse_into_messages(line: bytes | str, message: Message) -> None:
    assert parse_message(line) == message


@pytest.mark.parametrize(
    ("error", "request_id", "code", "message", "reason", "data"),
    [
        (
            {"code": -32602, "message": "bad", "data": {"reason": "missing_name"}},
            5,
            ErrorCode.INVALID_PARAMS,
            "bad",
            "missing_name",
            {},
        ),
        (
            {"code": -32009, "message": "stale", "data": {"reason": "stale", "attempt": 4}},
            "x",
            ErrorCode.CONFLICT,
            "stale",
            "stale",
            {"attempt": 4},
        ),
        # No data: the reason defaults to the code's name.
        ({"code": -32700, "message": "p"}, None, ErrorCode.PARSE_ERROR, "p", "parse_error", {}),
        # Unknown codes are kept in data["code"] and read as INTERNAL_ERROR.
        (
            {"code": 12345, "message": "odd", "data": {"reason": "odd"}},
            1,
            ErrorCode.INTERNAL_ERROR,
            "odd",
            "odd",
            {"code": 12345},
        ),
        # Non-object data is kept under "value"; a non-string reason is not a reason.
        (
            {"code": -32603, "message": "m", "data": [1]},
            1,
            ErrorCode.INTERNAL_ERROR,
            "m",
            "internal_error",
            {"value": [1]},
        ),
        (
            {"code": -32603, "message": "m", "data": {"reason": 3}},
            1,
            ErrorCode.INTERNAL_ERROR,
            "m",
            "internal_error",
            {"reason_value": 3},
        ),
    ],
)
def test_error_responses_become_rpc_errors(
    error: dict[str, Any],
    request_id: int | str | None,
    code: ErrorCode,
    message: str,
    reason: str,
    data: dict[str, Any],
) -> None:
    line = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})
    parsed = parse_message(line)
    assert isinstance(parsed, ErrorResponse)
    assert parsed.id == request_id
    assert (parsed.error.code, parsed.error.message) == (code, message)
    assert (parsed.error.reason, parsed.error.data) == (reason, data)


@pytest.mark.parametrize(
    ("line", "code", "reason", "request_id"),
    [
        (b"", ErrorCode.PARSE_ERROR, "bad_json", None),
        (b"{", ErrorCode.PARSE_ERROR, "bad_json", None),
        (b'{"jsonrpc":"2.0","id":1,"method":"p"', ErrorCode.PARSE_ERROR, "bad_json", None),
        (b'{"jsonrpc":"2.0","id":1,"method":"\xff"}', ErrorCode.PARSE_ERROR, "bad_json", None),
        (b'{"jsonrpc":"2.0","id":1,"method":"\xc3"}', ErrorCode.PARSE_ERROR, "bad_json", None),
        (b'{"jsonrpc":"2.0","id":1,"method":"\\ud800"}', ErrorCode.PARSE_ERROR, "bad_json", None),
        (b'{"jsonrpc":"2.0","id":NaN,"method":"p"}', ErrorCode.PARSE_ERROR, "bad_json", None),
        (b"[]", ErrorCode.INVALID_REQUEST, "batch_not_supported", None),
        (
            b'[{"jsonrpc":"2.0","method":"p"}]',
            ErrorCode.INVALID_REQUEST,
            "batch_not_supported",
            None,
        ),
        (b"1", ErrorCode.INVALID_REQUEST, "not_an_object", None),
        (b'"hello"', ErrorCode.INVALID_REQUEST, "not_an_object", None),
        (b"null", ErrorCode.INVALID_REQUEST, "not_an_object", None),
        (b'{"id":1,"method":"p"}', ErrorCode.INVALID_REQUEST, "bad_version", 1),
        (b'{"jsonrpc":"1.0","id":"a","method":"p"}', ErrorCode.INVALID_REQUEST, "bad_version", "a"),
        (b'{"jsonrpc":2.0,"method":"p"}', ErrorCode.INVALID_REQUEST, "bad_version", None),
        (b'{"jsonrpc":"2.0","id":1,"method":""}', ErrorCode.INVALID_REQUEST, "bad_method", 1),
        (b'{"jsonrpc":"2.0","id":2,"method":7}', ErrorCode.INVALID_REQUEST, "bad_method", 2),
        (b'{"jsonrpc":"2.0","method":null}', ErrorCode.INVALID_REQUEST, "bad_method", None),
        (b'{"jsonrpc":"2.0","id":true,"method":"p"}', ErrorCode.INVALID_REQUEST, "bad_id", None),
        (b'{"jsonrpc":"2.0","id":1.5,"method":"p"}', ErrorCode.INVALID_REQUEST, "bad_id", None),
        (b'{"jsonrpc":"2.0","id":[1],"method":"p"}', ErrorCode.INVALID_REQUEST, "bad_id", None),
        (b'{"jsonrpc":"2.0","id":{},"result":1}', ErrorCode.INVALID_REQUEST, "bad_id", None),
        (b'{"jsonrpc":"2.0","id":null,"method":"p"}', ErrorCode.INVALID_REQUEST, "bad_id", None),
        (b'{"jsonrpc":"2.0","id":null,"result":1}', ErrorCode.INVALID_REQUEST, "bad_id", None),
        (b'{"jsonrpc":"2.0","result":1}', ErrorCode.INVALID_REQUEST, "bad_id", None),
        (
            b'{"jsonrpc":"2.0","id":3,"method":"p","params":[1]}',
            ErrorCode.INVALID_PARAMS,
            "params_not_object",
            3,
        ),
        (
            b'{"jsonrpc":"2.0","id":3,"method":"p","params":"x"}',
            ErrorCode.INVALID_PARAMS,
            "params_not_object",
            3,
        ),
        (
            b'{"jsonrpc":"2.0","method":"p","params":0}',
            ErrorCode.INVALID_PARAMS,
            "params_not_object",
            None,
        ),
        (b'{"jsonrpc":"2.0","id":4}', ErrorCode.INVALID_REQUEST, "bad_message", 4),
        (b'{"jsonrpc":"2.0"}', ErrorCode.INVALID_REQUEST, "bad_message", None),
        (
            b'{"jsonrpc":"2.0","id":4,"method":"p","result":1}',
            ErrorCode.INVALID_REQUEST,
            "bad_message",
            4,
        ),
        (
            b'{"jsonrpc":"2.0","id":5,"result":1,"error":{"code":1,"message":"m"}}',
            ErrorCode.INVALID_REQUEST,
            "bad_response",
            5,
        ),
        (b'{"jsonrpc":"2.0","id":6,"error":"boom"}', ErrorCode.INVALID_REQUEST, "bad_error", 6),
        (
            b'{"jsonrpc":"2.0","id":6,"error":{"message":"m"}}',
            ErrorCode.INVALID_REQUEST,
            "bad_error",
            6,
        ),
        (
            b'{"jsonrpc":"2.0","id":6,"error":{"code":"1","message":"m"}}',
            ErrorCode.INVALID_REQUEST,
            "bad_error",
            6,
        ),
        (
            b'{"jsonrpc":"2.0","id":6,"error":{"code":true,"message":"m"}}',
            ErrorCode.INVALID_REQUEST,
            "bad_error",
            6,
        ),
        (b'{"jsonrpc":"2.0","id":6,"error":{"code":1}}', ErrorCode.INVALID_REQUEST, "bad_error", 6),
    ],
)
def test_bad_lines_raise_protocol_errors(
    line: bytes, code: ErrorCode, reason: str, request_id: int | str | None
) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_message(line)
    assert (info.value.code, info.value.reason) == (code, reason)
    assert info.value.request_id == request_id


def test_encoders_write_the_spec_wire_format() -> None:
    assert encode_request(1, "clients.list", {"select": "all"}) == (
        b'{"jsonrpc":"2.0","id":1,"method":"clients.list","params":{"select":"all"}}\n'
    )
    assert encode_request("a", "ping") == b'{"jsonrpc":"2.0","id":"a","method":"ping"}\n'
    assert encode_notification("heartbeat") == b'{"jsonrpc":"2.0","method":"heartbeat"}\n'
    assert encode_result(1, "pong") == b'{"jsonrpc":"2.0","id":1,"result":"pong"}\n'
    error = RpcError(ErrorCode.INVALID_PARAMS, "name is required", "missing_name")
    assert encode_error(None, error) == (
        b'{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"name is required",'
        b'"data":{"reason":"missing_name"}}}\n'
    )


def test_encode_keeps_each_message_on_one_line() -> None:
    line = encode({"text": "a\nb\r\n", 1: "non-string key"})
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert orjson.loads(line) == {"text": "a\nb\r\n", "1": "non-string key"}


# JSON values orjson round-trips exactly: 64-bit ints, finite floats, text without surrogates.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
params = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
ids = st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=12)
methods = st.text(min_size=1, max_size=20)


@given(request_id=ids, method=methods, params=params)
def test_requests_round_trip(request_id: int | str, method: str, params: dict[str, Any]) -> None:
    assert parse_message(encode_request(request_id, method, params)) == Request(
        request_id, method, params
    )


@given(method=methods, params=params | st.none())
def test_notifications_round_trip(method: str, params: dict[str, Any] | None) -> None:
    assert parse_message(encode_notification(method, params)) == Notification(method, params or {})


@given(request_id=ids, result=json_values)
def test_results_round_trip(request_id: int | str, result: Any) -> None:
    assert parse_message(encode_result(request_id, result)) == Response(request_id, result)


@given(
    request_id=ids | st.none(),
    code=st.sampled_from(ErrorCode),
    message=st.text(max_size=20),
    reason=st.text(min_size=1, max_size=12),
    data=st.dictionaries(
        st.text(max_size=8).filter(lambda k: k != "reason"), json_values, max_size=3
    ),
)
def test_errors_round_trip(
    request_id: int | str | None, code: ErrorCode, message: str, reason: str, data: dict[str, Any]
) -> None:
    sent = RpcError(code, message, reason, data)
    parsed = parse_message(encode_error(request_id, sent))
    assert isinstance(parsed, ErrorResponse)
    assert parsed.id == request_id
    assert parsed.error.to_dict() == sent.to_dict()


def check_parse_never_crashes(line: bytes | str) -> None:
    try:
        message = parse_message(line)
    except ProtocolError as error:
        assert isinstance(error.code, ErrorCode)
        return
    assert isinstance(message, Request | Notification | Response | ErrorResponse)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_protocol_error(line: bytes) -> None:
    check_parse_never_crashes(line)


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_protocol_error(line: str) -> None:
    check_parse_never_crashes(line)


# Objects close to real messages reach the deeper checks that random bytes never do.
near_messages = st.dictionaries(
    st.sampled_from(["jsonrpc", "id", "method", "params", "result", "error"]),
    st.sampled_from(["2.0", "ping", "", 1, 1.5, True, None, [], {}])
    | json_values
    | st.fixed_dictionaries(
        {}, optional={"code": json_values, "message": json_values, "data": json_values}
    ),
)


@given(near_messages)
def test_any_json_object_parses_or_raises_protocol_error(obj: dict[str, Any]) -> None:
    check_parse_never_crashes(orjson.dumps(obj))
