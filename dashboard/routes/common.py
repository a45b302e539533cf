"""Helpers the route modules share: reading and checking request parameters."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import bottle
import orjson

from ..guard import HttpFailure


def query_int(
    name: str, default: int | None, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    """An integer query parameter; 400 with a message when it is not one or out of range."""
    text = bottle.request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise HttpFailure(400, f"{name} must be an integer, not {text!r}", "bad_param") from None
    if minimum is not None and value < minimum:
        raise HttpFailure(400, f"{name} must be at least {minimum}", "bad_param")
    if maximum is not None and value > maximum:
        raise HttpFailure(400, f"{name} must be at most {maximum}", "bad_param")
    return value


def query_text(name: str, default: str | None = None, max_length: int = 500) -> str | None:
    text: str | None = bottle.request.query.getunicode(name)
    if text is None or text == "":
        return default
    if len(text) > max_length:
        raise HttpFailure(400, f"{name} is longer than {max_length} characters", "bad_param")
    return text


def json_body() -> dict[str, Any]:
    """The request's JSON object; 400 when the body is not one (415 for another content type)."""
    request = bottle.request
    if not request.content_type.startswith("application/json"):
        raise HttpFailure(415, "send the parameters as application/json", "bad_content_type")
    raw = request.body.read(1 << 20)
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise HttpFailure(400, f"invalid JSON: {exc}", "bad_json") from None
    if not isinstance(body, dict):
        raise HttpFailure(400, "the body must be a JSON object", "bad_json")
    return body


MAX_NEXT_LENGTH = 2000


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else "/": where to go after logging in.

    Browsers drop tabs and newlines anywhere in a URL, strip leading spaces and control
    characters and read a backslash as a slash, so `/\t/evil.example` is `//evil.example`,
    another site. A target with any of those, with `//` or a scheme, or with a character that
    is not printable ASCII is refused, not repaired.
    """
    if not target or len(target) > MAX_NEXT_LENGTH or not target.isascii():
        return "/"
    if any(char <= " " or char in "\x7f\\" for char in target):
        return "/"
    if not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target
