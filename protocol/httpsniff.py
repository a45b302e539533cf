"""Recognising HTTP where it does not belong: on the console dialect of the master's port.

A browser can make any page send an HTTP request to any host and port (`fetch` with `no-cors`,
a form post, a WebSocket handshake). Such a request must never be read as console commands, so
a line that is an HTTP request line, or a `Host:` / `Origin:` header, marks the peer as a web
client (the same rule as Redis's). Pure functions on one decoded line; no I/O.
"""

from __future__ import annotations

import re

# RFC 9110: method = token; request-target = origin-form (/…), absolute-form (scheme://…) or
# asterisk-form (*); then HTTP-version. Case-insensitive, since some clients send "http/1.1".
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_REQUEST_LINE = re.compile(
    rf"{_TOKEN}[ \t]+(?:/|\*|[A-Za-z][A-Za-z0-9+.-]*://)\S*[ \t]+HTTP/\d+(?:\.\d+)?[ \t]*",
    re.IGNORECASE,
)
# Every browser request carries Host; cross-origin ones Origin too. No console command is
# named like either, and a header line may arrive without its request line (a split request).
_BROWSER_HEADER = re.compile(r"[ \t]*(?:host|origin)[ \t]*:", re.IGNORECASE)


def looks_like_http(line: str) -> bool:
    """True when `line` is an HTTP request line or a Host/Origin header line."""
    return _REQUEST_LINE.fullmatch(line) is not None or _BROWSER_HEADER.match(line) is not None
