"""Audit method: audit.list, the log of state-changing calls, for admins."""

from __future__ import annotations

from typing import Any

from protocol.errors import invalid_params
from protocol.times import parse_iso_utc

from ..params import Params
from ..services import Services
from ..session import Session
from .base import Access, method

MAX_LIMIT = 1000


@method("audit.list", Access.ADMIN)
def audit_list(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """State-changing calls, newest first: who, from where, what (secrets redacted)."""
    limit = p.integer("limit", 100, minimum=1, maximum=MAX_LIMIT)
    since_text = p.text("since", None, max_length=64)
    p.finish()
    since = None
    if since_text is not None:
        try:
            since = parse_iso_utc(since_text)
        except (ValueError, OverflowError, OSError):
            raise invalid_params(
                f"audit.list: since must be an ISO 8601 time, not {since_text!r}", "bad_time"
            ) from None
    return {"entries": services.audit.entries(limit, since)}
