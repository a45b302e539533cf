"""Client methods: list, enable, disable, forget."""

from __future__ import annotations

from typing import Any

from protocol.selector import parse_selector

from ..services import Services
from ..session import Session
from .base import Access, Args, Method, collector, string

METHODS: list[Method] = []
method = collector(METHODS)

SELECTOR_SUMMARY = "a client selector, e.g. `online role=worker render-0*`"


@method("clients.list", Access.READ, params=(string("select", SELECTOR_SUMMARY, "all"),))
def clients_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Clients matching a selector (default `all`), sorted by name."""
    selector = parse_selector(p["select"])
    chosen = services.registry.select(selector)
    chosen.sort(key=lambda client: client.name)
    return {"clients": [client.view() for client in chosen]}


def _set_enabled(services: Services, p: Args, enabled: bool) -> dict[str, Any]:
    selector = parse_selector(p["select"])
    matched, changed = services.registry.set_enabled(selector, enabled)
    return {"matched": sorted(matched), "changed": sorted(changed)}


@method("clients.enable", Access.ADMIN, writes=True, params=(string("select", SELECTOR_SUMMARY),))
def clients_enable(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Enable the selected clients: workers among them get new tasks again."""
    return _set_enabled(services, p, True)


@method("clients.disable", Access.ADMIN, writes=True, params=(string("select", SELECTOR_SUMMARY),))
def clients_disable(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Disable the selected clients: no new task for them; running work finishes."""
    return _set_enabled(services, p, False)


@method("clients.forget", Access.ADMIN, writes=True, params=(string("name", "a client name"),))
def clients_forget(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Remove an offline client from the master and its database."""
    name = p["name"]
    client = services.registry.forget(name)
    services.store.delete_client(client.id)
    return {}
