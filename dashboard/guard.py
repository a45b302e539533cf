"""The bottle plugin every route passes through: Host check, session, access level, CSRF and
Origin checks on writes, and master errors turned into HTTP answers.

A route says who may use it with `access=` in its route config: `public` (anyone, e.g. the
login page, /metrics), `viewer` (any logged-in user) or `admin` (users.admin). JSON routes are
the ones under /api/ and /events: they answer errors as JSON, pages as HTML.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import bottle
import orjson

from .render import render
from .rpc import MasterUnavailable, RpcError
from .runtime import Dashboard
from .security import (
    CSRF_FIELD,
    CSRF_HEADER,
    UNSAFE_METHODS,
    csrf_matches,
    host_allowed,
    origin_allowed,
)
from .sessions import COOKIE_NAME, Session

log = logging.getLogger(__name__)

RPC_STATUS = {-32700: 400, -32600: 400, -32601: 404, -32602: 400, -32001: 403, -32004: 404}
RPC_STATUS |= {-32009: 409, -32013: 413}
ACCESS_LEVELS = ("public", "viewer", "admin")


class HttpFailure(Exception):
    """An error with an HTTP status and a message for the user."""

    def __init__(self, status: int, message: str, reason: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


def current_session() -> Session | None:
    session: Session | None = bottle.request.environ.get("farmhand.session")
    return session


def wants_json(path: str) -> bool:
    return path.startswith(("/api/", "/events"))


def error_response(status: int, message: str, reason: str = "") -> bottle.HTTPResponse:
    """A JSON error for API paths, a small escaped HTML page otherwise."""
    if wants_json(bottle.request.path):
        body = orjson.dumps({"error": {"status": status, "message": message, "reason": reason}})
        return bottle.HTTPResponse(body, status, {"Content-Type": "application/json"})
    html = render("error", status=status, message=message, session=current_session())
    return bottle.HTTPResponse(html, status, {"Content-Type": "text/html; charset=utf-8"})


class Guard:
    """Bottle plugin (API v2) applying the checks above to every route."""

    name = "farmhand-guard"
    api = 2

    def __init__(self, dash: Dashboard):
        self.dash = dash

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        access = route.config.get("access", "viewer")
        if access not in ACCESS_LEVELS:
            raise ValueError(f"route {route.rule}: unknown access {access!r}")

        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                self.check(access)
                return callback(*args, **kwargs)
            except HttpFailure as exc:
                return error_response(exc.status, exc.message, exc.reason)
            except RpcError as exc:
                return error_response(RPC_STATUS.get(exc.code, 502), exc.message, exc.reason)
            except MasterUnavailable as exc:
                return error_response(503, f"the master is unreachable: {exc}", "master_down")

        return guarded

    def check(self, access: str) -> None:
        request = bottle.request
        host = request.get_header("Host", "")
        if not host_allowed(host, self.dash.settings.host_names):
            raise HttpFailure(400, f"host {host!r} is not served here", "bad_host")
        session = self.dash.sessions.get(request.get_cookie(COOKIE_NAME))
        request.environ["farmhand.session"] = session
        if request.method in UNSAFE_METHODS:
            origin, referer = request.get_header("Origin"), request.get_header("Referer")
            if not origin_allowed(origin, referer, host):
                raise HttpFailure(403, "cross-site request refused", "bad_origin")
            supplied = request.get_header(CSRF_HEADER) or request.forms.get(CSRF_FIELD)
            if session is None or not csrf_matches(session.csrf, supplied):
                raise HttpFailure(403, "missing or wrong CSRF token: reload the page", "bad_csrf")
        if access == "public":
            return
        if session is None or not session.logged_in:
            if wants_json(request.path) or request.method != "GET":
                raise HttpFailure(401, "log in first", "login_required")
            target = request.fullpath + (f"?{request.query_string}" if request.query_string else "")
            raise bottle.HTTPResponse(
                status=303, headers={"Location": f"/login?next={quote(target)}"}
            )
        if access == "admin" and not session.admin:
            raise HttpFailure(403, "this needs an admin account", "admin_required")


def ensure_session(dash: Dashboard) -> Session:
    """The request's session, creating an anonymous one (for the login form's CSRF token)."""
    session = current_session()
    if session is None:
        session = dash.sessions.create()
        set_session_cookie(dash, session)
        bottle.request.environ["farmhand.session"] = session
    return session


def set_session_cookie(dash: Dashboard, session: Session) -> None:
    bottle.response.set_cookie(
        COOKIE_NAME,
        session.id,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=dash.settings.secure_cookies,
    )
