"""Request checks: Host (against DNS rebinding), Origin (cross-site writes), CSRF tokens, and
JSON that is safe to embed in an HTML page."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any
from urllib.parse import urlsplit

import orjson

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"


def split_host(host_header: str) -> str:
    """The host name of a Host header value, lower-case, without port or IPv6 brackets."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_allowed(host_header: str, allowed_names: frozenset[str]) -> bool:
    """True for IP literals, localhost and the configured names.

    DNS rebinding needs an attacker's host name that resolves to us; a request for an IP
    address or a name we were told about cannot come from such a page.
    """
    host = split_host(host_header)
    if not host:
        return False
    return host in LOCAL_NAMES or host in allowed_names or is_ip_literal(host)


def origin_allowed(origin: str | None, referer: str | None, host_header: str) -> bool:
    """A state-changing request must come from our own pages when the browser says where from.

    Browsers send Origin on cross-site POSTs; scripts (curl, requests) send neither header and
    are held by the CSRF token instead.
    """
    source = origin if origin and origin != "null" else referer
    if origin == "null":
        return False
    if not source:
        return True
    parts = urlsplit(source)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host_header.strip().lower()


def csrf_matches(expected: str, supplied: str | None) -> bool:
    return bool(supplied) and hmac.compare_digest(expected.encode(), (supplied or "").encode())


_HTML_UNSAFE = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def json_for_html(value: Any) -> str:
    """JSON text that can sit inside <script type="application/json"> without ending it."""
    return orjson.dumps(value).decode().translate(_HTML_UNSAFE)
