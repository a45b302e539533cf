"""Error codes and the one exception type the API and the protocol raise.

Every error a peer can see is an `RpcError`: a JSON-RPC code from `ErrorCode`, a human message
and a short machine-readable `reason`. `ProtocolError` marks errors caused by malformed bytes.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ErrorCode(IntEnum):
    """The error codes of docs/protocol.md, in one table."""

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    UNAUTHORIZED = -32001
    NOT_FOUND = -32004
    CONFLICT = -32009
    TOO_LARGE = -32013


class RpcError(Exception):
    """An error reply: `code`, `message` for people, `reason` for programs, optional `data`."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        reason: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.reason = reason or self.code.name.lower()
        self.data = dict(data or {})

    def to_dict(self) -> dict[str, Any]:
        """The `error` member of a JSON-RPC response."""
        return {
            "code": int(self.code),
            "message": self.message,
            "data": {"reason": self.reason, **self.data},
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}, {self.message!r}, reason={self.reason!r})"


class ProtocolError(RpcError):
    """The peer sent bytes we cannot understand. `request_id` is set when one was recovered."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        reason: str | None = None,
        request_id: Any = None,
    ) -> None:
        super().__init__(code, message, reason)
        self.request_id = request_id


def invalid_params(message: str, reason: str = "invalid_params") -> RpcError:
    """Shorthand for the most common error: a parameter is missing or wrong."""
    return RpcError(ErrorCode.INVALID_PARAMS, message, reason)


def not_found(message: str, reason: str = "not_found") -> RpcError:
    return RpcError(ErrorCode.NOT_FOUND, message, reason)


def conflict(message: str, reason: str = "conflict") -> RpcError:
    return RpcError(ErrorCode.CONFLICT, message, reason)


def unauthorized(message: str, reason: str = "unauthorized") -> RpcError:
    return RpcError(ErrorCode.UNAUTHORIZED, message, reason)
