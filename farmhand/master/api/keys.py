"""Key methods: create (the secret is shown once), list, revoke."""

from __future__ import annotations

from typing import Any

from ..keys import key_view
from ..services import Services
from ..session import Session
from .base import Access, Args, Method, collector, string

METHODS: list[Method] = []
method = collector(METHODS)


@method(
    "keys.create",
    Access.ADMIN,
    writes=True,
    params=(
        string("role", "the role the key is for"),
        string(
            "name",
            "agent keys: the client name it binds to; api keys: whose key",
            "",
            max_length=200,
        ),
        string("label", "a note on what the key is for", "", max_length=200),
        string("scope", "api keys: `read` or `admin` (the default)", None, max_length=16),
    ),
)
def keys_create(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Create a key for a role; the result's `key` is shown this once and never again.

    Agent keys: `name` binds the key to that client name (else its first hello does).
    Api keys: `name` says whose key it is, `scope` is `read` or `admin` (the default).
    """
    role = p["role"]
    name = p["name"]
    label = p["label"]
    scope = p["scope"]
    record, key = services.keys.create(role, name, services.clock.wall(), label, scope)
    return {**key_view(record), "key": key}


@method("keys.list", Access.ADMIN)
def keys_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Every key, without secrets."""
    return {"keys": [key_view(record) for record in services.keys.records()]}


@method("keys.revoke", Access.ADMIN, writes=True, params=(string("key_id", "the key's id"),))
def keys_revoke(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Revoke a key: it stops working for new hellos at once."""
    key_id = p["key_id"]
    record = services.keys.revoke(key_id)
    # A revoked key stops working at once: sessions that used it are closed too.
    for connection in list(services.connections):
        if connection.session.key_id == key_id:
            connection.close(f"key {key_id} revoked")
    return key_view(record)
