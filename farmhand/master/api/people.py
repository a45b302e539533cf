"""People methods: users, tokens, presence and pours."""

from __future__ import annotations

from typing import Any

from protocol.errors import unauthorized

from ..devices.people import token_view, unknown_view, user_view
from ..devices.taps import pour_view
from ..services import Services
from ..session import Session
from .base import Access, Args, Method, boolean, collector, integer, string

METHODS: list[Method] = []
method = collector(METHODS)


@method(
    "users.create",
    Access.ADMIN,
    writes=True,
    params=(
        string("username", "the user's name", max_length=64),
        string("display_name", "the name shown for the user", "", max_length=200),
        string(
            "password", "a password for the dashboard (none: token only)", None, max_length=1000
        ),
        boolean("admin", "whether the user may administer", False),
    ),
)
def users_create(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Create a user (a drinker, an operator); the password is stored as an scrypt hash."""
    username = p["username"]
    display_name = p["display_name"]
    password = p["password"]
    admin = p["admin"]
    user = services.devices.people.create_user(
        username, display_name, password, admin, services.clock.wall()
    )
    return user_view(user)


@method("users.list", Access.READ)
def users_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Every user."""
    users = services.devices.people.users
    return {"users": [user_view(users[name]) for name in sorted(users)]}


@method(
    "users.authenticate",
    Access.ADMIN,
    params=(
        string("username", "the user's name", max_length=64),
        string("password", "the user's password", max_length=1000),
    ),
)
def users_authenticate(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Check a user's password (the dashboard's login); -32001 if it is wrong."""
    username = p["username"]
    password = p["password"]
    user = services.devices.people.authenticate(username, password)
    if user is None:
        raise unauthorized("wrong username or password", "bad_login")
    return user_view(user)


@method(
    "tokens.assign",
    Access.ADMIN,
    writes=True,
    params=(
        string("reader", "the token reader's name", max_length=64),
        string("token", "the token's id as the reader reports it", max_length=128),
        string("username", "the user's name", max_length=64),
    ),
)
def tokens_assign(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Give a token (reader + hex id) to a user."""
    reader = p["reader"]
    token = p["token"]
    username = p["username"]
    record = services.devices.people.assign(reader, token, username, services.clock.wall())
    return token_view(record)


@method("tokens.list", Access.READ)
def tokens_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Assigned tokens, and unknown tokens seen recently (to assign)."""
    people = services.devices.people
    return {
        "tokens": [token_view(people.tokens[key]) for key in sorted(people.tokens)],
        "unknown": [unknown_view(seen) for seen in people.unknown.values()],
    }


@method(
    "tokens.revoke",
    Access.ADMIN,
    writes=True,
    params=(
        string("reader", "the token reader's name", max_length=64),
        string("token", "the token's id as the reader reports it", max_length=128),
    ),
)
def tokens_revoke(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Take a token away from its user."""
    reader = p["reader"]
    token = p["token"]
    services.devices.people.revoke(reader, token)
    return {}


@method("presence.list", Access.READ)
def presence_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Who is present at which reader now."""
    return {"presence": services.devices.presence_list()}


@method(
    "pours.list",
    Access.READ,
    params=(
        string("tap", "only pours at this tap", None, max_length=64),
        string("username", "only this user's pours", None, max_length=64),
        integer("limit", "at most this many", 100, minimum=1, maximum=10_000),
    ),
)
def pours_list(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Recorded pours, newest first; by tap or user (`guest` for anonymous pours)."""
    tap = p["tap"]
    username = p["username"]
    limit = p["limit"]
    guest = username == "guest"
    pours = services.devices.store.query_pours(
        tap, None if guest else username, limit, guest_only=guest
    )
    return {"pours": [pour_view(pour) for pour in pours]}


@method("pours.totals", Access.READ)
def pours_totals(services: Services, session: Session, p: Args) -> dict[str, Any]:
    """Pour count and volume per user (`username` null: the guest) and per keg."""
    return services.devices.store.pour_totals()
