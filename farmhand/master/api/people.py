"""People methods: users, tokens, presence and pours."""

from __future__ import annotations

from typing import Any

from protocol.errors import unauthorized

from ..devices.people import token_view, unknown_view, user_view
from ..devices.taps import pour_view
from ..params import Params
from ..services import Services
from ..session import Session
from .base import Access, method


@method("users.create", Access.ADMIN, writes=True)
def users_create(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Create a user (a drinker, an operator); the password is stored as an scrypt hash."""
    username = p.text("username", max_length=64)
    display_name = p.text("display_name", "", max_length=200)
    password = p.text("password", None, max_length=1000)
    admin = p.boolean("admin", False)
    p.finish()
    user = services.devices.people.create_user(
        username, display_name, password, admin, services.clock.wall()
    )
    return user_view(user)


@method("users.list", Access.READ)
def users_list(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Every user."""
    p.finish()
    users = services.devices.people.users
    return {"users": [user_view(users[name]) for name in sorted(users)]}


@method("users.authenticate", Access.ADMIN)
def users_authenticate(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Check a user's password (the dashboard's login); -32001 if it is wrong."""
    username = p.text("username", max_length=64)
    password = p.text("password", max_length=1000)
    p.finish()
    user = services.devices.people.authenticate(username, password)
    if user is None:
        raise unauthorized("wrong username or password", "bad_login")
    return user_view(user)


@method("tokens.assign", Access.ADMIN, writes=True)
def tokens_assign(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Give a token (reader + hex id) to a user."""
    reader = p.text("reader", max_length=64)
    token = p.text("token", max_length=128)
    username = p.text("username", max_length=64)
    p.finish()
    record = services.devices.people.assign(reader, token, username, services.clock.wall())
    return token_view(record)


@method("tokens.list", Access.READ)
def tokens_list(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Assigned tokens, and unknown tokens seen recently (to assign)."""
    p.finish()
    people = services.devices.people
    return {
        "tokens": [token_view(people.tokens[key]) for key in sorted(people.tokens)],
        "unknown": [unknown_view(seen) for seen in people.unknown.values()],
    }


@method("tokens.revoke", Access.ADMIN, writes=True)
def tokens_revoke(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Take a token away from its user."""
    reader = p.text("reader", max_length=64)
    token = p.text("token", max_length=128)
    p.finish()
    services.devices.people.revoke(reader, token)
    return {}


@method("presence.list", Access.READ)
def presence_list(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Who is present at which reader now."""
    p.finish()
    return {"presence": services.devices.presence_list()}


@method("pours.list", Access.READ)
def pours_list(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Recorded pours, newest first; by tap or user (`guest` for anonymous pours)."""
    tap = p.text("tap", None, max_length=64)
    username = p.text("username", None, max_length=64)
    limit = p.integer("limit", 100, minimum=1, maximum=10_000)
    p.finish()
    guest = username == "guest"
    pours = services.devices.store.query_pours(
        tap, None if guest else username, limit, guest_only=guest
    )
    return {"pours": [pour_view(pour) for pour in pours]}


@method("pours.totals", Access.READ)
def pours_totals(services: Services, session: Session, p: Params) -> dict[str, Any]:
    """Pour count and volume per user (`username` null: the guest) and per keg."""
    p.finish()
    return services.devices.store.pour_totals()
