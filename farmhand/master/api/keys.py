"""Key methods: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from typing import Any

from ..keys import key_view
from ..params import Params
from ..services import Services
from ..session import Session
from .base import Access, method


@method("keys.create", Access.ADMIN, writes=True)
def keys_create(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Create a key for a role; the result's `key` is shown this once and never again.

    Agent keys: `name` binds the key to that client name (else its first hello does).
    Api keys: `name` says whose key it is, `scope` is `read` or `admin` (the default).
    """
    role = p.text("role")
    name = p.text("name", "", max_length=200)
    label = p.text("label", "", max_length=200)
    scope = p.text("scope", None, max_length=16)
    p.finish()
    record, key = services.keys.create(role, name, services.clock.wall(), label, scope)
    return {**key_view(record), "key": key}


@method("keys.list", Access.ADMIN)
def keys_list(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Every key, without secrets."""
    p.finish()
    return {"keys": [key_view(record) for record in services.keys.records()]}


@method("keys.revoke", Access.ADMIN, writes=True)
def keys_revoke(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Revoke a key: it stops working for new hellos at once."""
    key_id = p.text("key_id")
    p.finish()
    record = services.keys.revoke(key_id)
    # A revoked key stops working at once: sessions that used it are closed too.
    for connection in list(services.connections):
        if connection.session.key_id == key_id:
            connection.close(f"key {key_id} revoked")
    return key_view(record)
