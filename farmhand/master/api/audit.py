"""Audit method: audit.list, the log of state-changing calls, for admins."""

from __future__ import annotations

from typing import Any

from protocol.errors import invalid_params
from protocol.times import parse_iso_utc

from ..services import Services
from ..session import Session
from .base import Access, Args, Method, collector, integer, string

MAX_LIMIT = 1000


METHODS: list[Method] = []
method = collector(METHODS)


@method(
    "audit.list",
    Access.ADMIN,
    params=(
        integer("limit", "at most this many", 100, minimum=1, maximum=MAX_LIMIT),
        string("since", "only from this ISO 8601 UTC time on", None, max_length=64),
    ),
)
def audit_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """State-changing calls, newest first: who, from where, what (secrets redacted)."""
    limit = p["limit"]
    since_text = p["since"]
    since = None
    if since_text is not None:
        try:
            since = parse_iso_utc(since_text)
        except (ValueError, OverflowError, OSError):
            raise invalid_params(
                f"audit.list: since must be an ISO 8601 time, not {since_text!r}", "bad_time"
            ) from None
    return {"entries": services.audit.entries(limit, since)}
