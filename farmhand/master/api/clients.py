"""Client methods: list, enable, disable, forget."""

from __future__ import annotations

from typing import Any

from protocol.selector import parse_selector

from ..params import Params
from ..services import Services
from ..session import Session
from .base import Access, method


@method("clients.list", Access.READ)
def clients_list(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Clients matching a selector (default `all`), sorted by name."""
    selector = parse_selector(p.text("select", "all"))
    p.finish()
    chosen = services.registry.select(selector)
    chosen.sort(key=lambda client: client.name)
    return {"clients": [client.view() for client in chosen]}


def _set_enabled(services: Services, p: Params, enabled: bool) -> dict[str, Any]:
    selector = parse_selector(p.text("select"))
    p.finish()
    matched, changed = services.registry.set_enabled(selector, enabled)
    return {"matched": sorted(matched), "changed": sorted(changed)}


@method("clients.enable", Access.ADMIN, writes=True)
def clients_enable(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Enable the selected clients: workers among them get new tasks again."""
    return _set_enabled(services, p, True)


@method("clients.disable", Access.ADMIN, writes=True)
def clients_disable(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Disable the selected clients: no new task for them; running work finishes."""
    return _set_enabled(services, p, False)


@method("clients.forget", Access.ADMIN, writes=True)
def clients_forget(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Remove an offline client from the master and its database."""
    name = p.text("name")
    p.finish()
    client = services.registry.forget(name)
    services.store.delete_client(client.id)
    return {}
