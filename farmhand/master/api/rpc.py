"""The API describing itself: rpc.discover, an OpenRPC document of the method table."""

from __future__ import annotations

from typing import Any

from ..services import Services
from ..session import Session
from .base import Access, Args, Method, collector

METHODS: list[Method] = []
method = collector(METHODS)


@method("rpc.discover", Access.READ)
def rpc_discover(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """This API as an OpenRPC document: every method, its params and who may call it."""
    from .openrpc import document  # the assembled table, which includes this module

    return document()
