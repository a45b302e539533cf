"""JSON-RPC 2.0 messages (docs/protocol.md): four message types, one parser, and the encoders.

`parse_message` turns one NDJSON line into a message or raises `ProtocolError` (never another
exception). Batches are not supported. Every `encode_*` returns one line ending in `\\n`.
JSON goes through orjson when it is installed, else through the standard library's `json`
with orjson's rules (the stdlib-only client runs where orjson cannot be installed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from protocol.errors import ErrorCode, ProtocolError, RpcError

try:
    import orjson
except ImportError:  # e.g. inside Blender's Python: the stdlib codec below takes over
    orjson = None  # type: ignore[assignment]

JSONRPC_VERSION = "2.0"

RequestId = int | str


@dataclass(frozen=True, slots=True)
class Request:
    id: RequestId
    method: str
    params: dict[str, Any]
    # farmhand's one extension member: the dashboard user an admin connection acts for.
    on_behalf_of: str | None = None


@dataclass(frozen=True, slots=True)
class Notification:
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Response:
    id: RequestId
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    id: RequestId | None
    error: RpcError


Message = Request | Notification | Response | ErrorResponse

_MISSING: Any = object()

# -- the JSON codec -------------------------------------------------------------------------------
# orjson's limits, kept by the stdlib codec too: integers of at most 64 bits, no NaN/Infinity,
# strings of valid UTF-8 without lone surrogates.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _checked_int(text: str) -> int:
    value = int(text)
    if not _INT_MIN <= value <= _INT_MAX:
        raise ValueError(f"integer {text[:24]} exceeds 64 bits")
    return value


def _no_constants(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _has_lone_surrogate(value: Any) -> bool:
    if type(value) is str:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if type(value) is dict:
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if type(value) is list:
        return any(_has_lone_surrogate(item) for item in value)
    return False


def stdlib_loads(data: bytes | bytearray | memoryview | str) -> Any:
    """`json.loads` held to orjson's rules; every refusal is a ValueError."""
    if isinstance(data, str):
        text = data
        text.encode("utf-8")  # UnicodeEncodeError (a ValueError) for lone surrogates
    else:
        text = bytes(data).decode("utf-8")
    try:
        value = json.loads(text, parse_int=_checked_int, parse_constant=_no_constants)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    # A lone surrogate can only come from a \\uD8xx-\\uDFxx escape: look closer only then.
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(value):
        raise ValueError("a lone surrogate is not valid UTF-8")
    return value


def stdlib_dump_line(obj: Any) -> bytes:
    """`obj` as compact JSON plus `\\n`; `json` escapes control characters as orjson does."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


if orjson is not None:
    # OPT_NON_STR_KEYS takes orjson's slower path for every dict (clients.list over 10,000
    # agents: 4.1 ms instead of 2.5), so it is only the fallback for the rare non-str key.
    _ORJSON_LINE = orjson.OPT_APPEND_NEWLINE
    _ORJSON_ANY_KEYS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE

    def orjson_dump_line(obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, option=_ORJSON_LINE)
        except orjson.JSONEncodeError:
            return orjson.dumps(obj, option=_ORJSON_ANY_KEYS)

    loads: Callable[[Any], Any] = orjson.loads
    dump_line: Callable[[Any], bytes] = orjson_dump_line
    JSON_BACKEND = "orjson"
else:
    loads = stdlib_loads
    dump_line = stdlib_dump_line
    JSON_BACKEND = "json"


def _reject(
    code: ErrorCode, message: str, reason: str, request_id: RequestId | None = None
) -> NoReturn:
    raise ProtocolError(code, message, reason, request_id)


def parse_message(line: bytes | str) -> Message:
    """Parse one line into a message; bad input raises `ProtocolError` only.

    Once the `id` has been read, errors carry it in `request_id` so the caller can answer it.
    """
    try:
        obj = loads(line)
    except ValueError as exc:
        # Both codecs also reject invalid UTF-8, lone surrogates, NaN and 65-bit integers here.
        raise ProtocolError(ErrorCode.PARSE_ERROR, f"invalid JSON: {exc}", "bad_json") from None
    if type(obj) is not dict:
        if type(obj) is list:
            _reject(ErrorCode.INVALID_REQUEST, "batches are not supported", "batch_not_supported")
        _reject(ErrorCode.INVALID_REQUEST, "a message must be a JSON object", "not_an_object")

    request_id = obj.get("id", _MISSING)
    has_id = request_id is not _MISSING
    if not has_id:
        request_id = None
    # `type(x) is int` on purpose: bools are ints to isinstance() but never ids.
    elif request_id is not None and type(request_id) is not int and type(request_id) is not str:
        _reject(ErrorCode.INVALID_REQUEST, "id must be an integer, a string or null", "bad_id")

    if obj.get("jsonrpc") != JSONRPC_VERSION:
        _reject(ErrorCode.INVALID_REQUEST, 'jsonrpc must be "2.0"', "bad_version", request_id)

    method = obj.get("method", _MISSING)
    if method is not _MISSING:
        if type(method) is not str or not method:
            _reject(
                ErrorCode.INVALID_REQUEST,
                "method must be a non-empty string",
                "bad_method",
                request_id,
            )
        if "result" in obj or "error" in obj:
            _reject(
                ErrorCode.INVALID_REQUEST,
                "a request cannot carry result or error",
                "bad_message",
                request_id,
            )
        params = obj.get("params")
        if params is None:
            params = {}
        elif type(params) is not dict:
            _reject(
                ErrorCode.INVALID_PARAMS,
                "params must be an object",
                "params_not_object",
                request_id,
            )
        if not has_id:
            return Notification(method, params)
        if request_id is None:
            _reject(ErrorCode.INVALID_REQUEST, "a request id must not be null", "bad_id")
        user = obj.get("on_behalf_of")
        if user is not None and type(user) is not str:
            _reject(
                ErrorCode.INVALID_REQUEST,
                "on_behalf_of must be a string",
                "bad_on_behalf_of",
                request_id,
            )
        return Request(request_id, method, params, user)

    has_result = "result" in obj
    has_error = "error" in obj
    if not has_result and not has_error:
        _reject(
            ErrorCode.INVALID_REQUEST,
            "neither a request nor a response",
            "bad_message",
            request_id,
        )
    if has_result and has_error:
        _reject(
            ErrorCode.INVALID_REQUEST,
            "a response has result or error, not both",
            "bad_response",
            request_id,
        )
    if not has_id:
        _reject(ErrorCode.INVALID_REQUEST, "a response must have an id", "bad_id")
    if has_result:
        if request_id is None:
            _reject(ErrorCode.INVALID_REQUEST, "a result needs a non-null id", "bad_id")
        return Response(request_id, obj["result"])
    return ErrorResponse(request_id, _parse_error(obj["error"], request_id))


def _parse_error(error: Any, request_id: RequestId | None) -> RpcError:
    """The `error` member as an `RpcError`.

    Codes outside `ErrorCode` become INTERNAL_ERROR with the peer's number kept in
    `data["code"]`; non-object `data` is kept under `data["value"]`.
    """
    if type(error) is not dict:
        _reject(ErrorCode.INVALID_REQUEST, "error must be an object", "bad_error", request_id)
    code = error.get("code")
    message = error.get("message")
    if type(code) is not int or type(message) is not str:
        _reject(
            ErrorCode.INVALID_REQUEST,
            "error needs an integer code and a string message",
            "bad_error",
            request_id,
        )
    raw_data = error.get("data")
    if raw_data is None:
        data: dict[str, Any] = {}
    elif type(raw_data) is dict:
        data = raw_data
    else:
        data = {"value": raw_data}
    reason = data.pop("reason", None)
    if reason is not None and type(reason) is not str:
        data["reason_value"] = reason
        reason = None
    try:
        error_code = ErrorCode(code)
    except ValueError:
        error_code = ErrorCode.INTERNAL_ERROR
        data["code"] = code
    return RpcError(error_code, message, reason, data)


def encode(obj: Any) -> bytes:
    """`obj` as one JSON line. Control characters are escaped, so no raw `\\n` inside."""
    return dump_line(obj)


def encode_request(
    request_id: RequestId,
    method: str,
    params: dict[str, Any] | None = None,
    on_behalf_of: str | None = None,
) -> bytes:
    message: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    if on_behalf_of is not None:
        message["on_behalf_of"] = on_behalf_of
    return dump_line(message)


def encode_notification(method: str, params: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": JSONRPC_VERSION, "method": method}
    if params is not None:
        message["params"] = params
    return dump_line(message)


def encode_result(request_id: RequestId | None, result: Any) -> bytes:
    return dump_line({"jsonrpc": JSONRPC_VERSION, "id": request_id, "result": result})


def encode_error(request_id: RequestId | None, error: RpcError) -> bytes:
    return dump_line({"jsonrpc": JSONRPC_VERSION, "id": request_id, "error": error.to_dict()})
