"""Pour corrections (Kegbot Server's admin): cancel a pour, mark it as spill, give it to another
drinker, change its volume. Each is a write, so the audit log records it."""

from __future__ import annotations

from typing import Any

from ..devices.taps import pour_view
from ..params import MAX_ID
from ..services import Services
from ..session import Session
from .base import Access, Args, Method, boolean, collector, integer, number, string

METHODS: list[Method] = []
method = collector(METHODS)


@method(
    "pours.cancel",
    Access.ADMIN,
    writes=True,
    params=(integer("id", "the pour's id", minimum=1, maximum=MAX_ID),),
)
def pours_cancel(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Cancel a pour: its volume goes back into its keg and it leaves the stats and listings."""
    return pour_view(services.devices.corrections.cancel(p["id"]))


@method(
    "pours.update",
    Access.ADMIN,
    writes=True,
    params=(
        integer("id", "the pour's id", minimum=1, maximum=MAX_ID),
        string("username", "give it to this user (`guest`: to nobody)", None, max_length=64),
        number("volume_ml", "its corrected volume in ml", None, minimum=0),
        boolean("spill", "a spill: it left the keg but counts for no drinker", None),
    ),
)
def pours_update(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Correct a pour: reassign it, change its volume, or mark it as a spill (or not)."""
    pour = services.devices.corrections.update(
        p["id"], username=p["username"], volume_ml=p["volume_ml"], spill=p["spill"]
    )
    return pour_view(pour)
