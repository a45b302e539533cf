"""Drinking sessions and pour statistics (Kegbot Server's): `sessions.list`, `stats.get`."""

from __future__ import annotations

from typing import Any

from protocol.errors import invalid_params, not_found

from ..services import Services
from ..session import Session
from .base import Access, Args, Method, collector, integer, string

METHODS: list[Method] = []
method = collector(METHODS)


@method(
    "sessions.list",
    Access.READ,
    params=(integer("limit", "at most this many, newest first", 50, minimum=0, maximum=10_000),),
)
def sessions_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Drinking sessions, newest first: pours less than the session gap (90 min) apart."""
    return {"sessions": services.devices.stats.session_list(p["limit"])}


@method(
    "stats.get",
    Access.READ,
    params=(
        integer("keg", "one keg's stats (its id)", None, minimum=1),
        string("username", "one user's stats", None, max_length=64),
        integer("session", "one drinking session's stats (its sessions.list id)", None, minimum=1),
    ),
)
def stats_get(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Totals of the system, of one keg, one user or one drinking session: volume, pours, by
    drinker and weekday, the largest pour, sessions. Kept up to date per pour, never computed
    by a scan."""
    keg, username, session_id = p["keg"], p["username"], p["session"]
    stats = services.devices.stats
    if sum(x is not None for x in (keg, username, session_id)) > 1:
        raise invalid_params("stats.get: give one of keg, username or session", "bad_param")
    if session_id is not None:
        found = stats.session(session_id)
        if found is None or found.pours <= 0:
            raise not_found(f"no drinking session {session_id}", "no_such_session")
        return stats.get(("session", session_id))
    if keg is not None:
        known = stats.has(("keg", keg)) or any(
            tap.keg is not None and tap.keg.id == keg for tap in services.devices.taps.taps.values()
        )
        if not known:
            raise not_found(f"no keg {keg}", "no_such_keg")
        return stats.get(("keg", keg))
    if username is not None:
        if username not in services.devices.people.users and not stats.has(("user", username)):
            raise not_found(f"no user {username!r}", "no_such_user")
        return stats.get(("user", username))
    return stats.get(("system", None))
