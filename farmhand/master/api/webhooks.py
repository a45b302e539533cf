"""Webhook methods: create, list (with each one's delivery log), delete."""

from __future__ import annotations

from typing import Any

from ..services import Services
from ..session import Session
from ..webhooks.dispatcher import EVENT_NAMES
from .base import Access, Args, Method, collector, integer, string, text_list

METHODS: list[Method] = []
method = collector(METHODS)


@method(
    "webhooks.create",
    Access.ADMIN,
    writes=True,
    params=(
        string("url", "where events are POSTed: http://… or https://…", max_length=2000),
        text_list("events", f"the events to send: some of {', '.join(EVENT_NAMES)}"),
        string(
            "secret", "signs each body: X-Farmhand-Signature: sha256=HMAC", None, max_length=200
        ),
    ),
)
def webhooks_create(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Create a webhook: each of its events is POSTed to `url` as `{event, time, data}`, signed
    with `secret` when given, retried with backoff for a day."""
    hook = services.webhooks.create(p["url"], p["events"], p["secret"], services.clock.wall())
    return hook.view()


@method("webhooks.list", Access.ADMIN)
def webhooks_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Every webhook with its delivery log: counts, the last status code, latency and error, and
    the newest deliveries."""
    return {"webhooks": services.webhooks.views()}


@method("webhooks.delete", Access.ADMIN, writes=True, params=(integer("id", "the webhook's id"),))
def webhooks_delete(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Delete a webhook and its delivery log; what it had queued is not sent."""
    services.webhooks.delete(p["id"])
    return {}
