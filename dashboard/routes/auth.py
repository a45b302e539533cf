"""Logging in and out, for browsers (form posts) and scripts (/api/session, /api/login).

Failed logins back off per user name and per client address (dashboard/logins.py); a browser
that logged in as the user before carries a device cookie and is throttled on that alone.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import bottle

from ..guard import (
    HttpFailure,
    current_session,
    ensure_session,
    error_response,
    set_session_cookie,
)
from ..logins import login_keys
from ..render import render
from ..rpc import MasterUnavailable, RpcError
from ..runtime import Dashboard
from ..sessions import Session
from .common import json_body, safe_next

log = logging.getLogger(__name__)

DEVICE_COOKIE = "fh_device"
DEVICE_COOKIE_MAX_AGE_S = 180 * 24 * 3600


class LoginThrottled(HttpFailure):
    def __init__(self, wait_s: float) -> None:
        self.retry_after = max(1, math.ceil(wait_s))
        super().__init__(
            429,
            f"too many failed logins: try again in {self.retry_after} s",
            "throttled",
        )


def session_view(session: Session) -> dict[str, Any]:
    return {"username": session.username, "admin": session.admin, "csrf": session.csrf}


def authenticate(dash: Dashboard, username: str, password: str) -> Session:
    """Check the password with the master; a fresh session on success, 401 otherwise, 429
    while this name or address must wait after failed logins."""
    if not username or not password:
        raise HttpFailure(400, "give a username and a password", "missing_param")
    # The TCP peer, never X-Forwarded-For (bottle's remote_addr): a header is anyone's to set.
    address = bottle.request.environ.get("REMOTE_ADDR") or "unknown"
    guard = dash.logins
    cookie = bottle.request.get_cookie(DEVICE_COOKIE)
    device = cookie if cookie and guard.devices.owner(cookie) == username else None
    keys = login_keys(username, address, device)
    wait_s = guard.throttle.begin(keys, guard.clock())
    if wait_s > 0:
        log.info("login for %r from %s refused: wait %.0fs", username, address, wait_s)
        raise LoginThrottled(wait_s)
    try:
        user = dash.call("users.authenticate", {"username": username, "password": password})
    except RpcError as exc:
        if exc.code in (-32001, -32602):
            log.info("failed login for %r from %s", username, address)
            raise HttpFailure(401, "wrong username or password", "bad_login") from None
        guard.throttle.abandoned(keys)
        raise
    except MasterUnavailable:
        guard.throttle.abandoned(keys)
        raise
    if not user.get("enabled", True):
        raise HttpFailure(403, "this account is disabled", "disabled")
    guard.throttle.succeeded(keys)
    if device is None:
        bottle.response.set_cookie(
            DEVICE_COOKIE,
            guard.devices.issue(username),
            path="/",
            max_age=DEVICE_COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="Strict",
            secure=dash.settings.secure_cookies,
        )
    session = dash.sessions.login(current_session(), user["username"], bool(user.get("admin")))
    set_session_cookie(dash, session)
    log.info("user %s logged in from %s (admin=%s)", session.username, address, session.admin)
    return session


def install(app: bottle.Bottle, dash: Dashboard) -> None:
    @app.get("/login", access="public")
    def login_form() -> str:
        session = ensure_session(dash)
        next_path = safe_next(bottle.request.query.getunicode("next"))
        return render("login", session=session, next=next_path, error="", username="")

    @app.post("/login", access="public")
    def login_submit() -> Any:
        forms = bottle.request.forms
        username = (forms.getunicode("username") or "").strip()
        next_path = safe_next(forms.getunicode("next"))
        try:
            authenticate(dash, username, forms.getunicode("password") or "")
        except HttpFailure as exc:
            bottle.response.status = exc.status
            if isinstance(exc, LoginThrottled):
                bottle.response.set_header("Retry-After", str(exc.retry_after))
            session = ensure_session(dash)
            return render(
                "login", session=session, next=next_path, error=exc.message, username=username
            )
        bottle.redirect(next_path, 303)

    @app.post("/logout", access="viewer")
    def logout() -> None:
        session = current_session()
        if session is not None:
            dash.sessions.drop(session.id)
        bottle.response.delete_cookie("fh_session", path="/")
        bottle.redirect("/login", 303)

    @app.get("/api/session", access="public")
    def api_session() -> dict[str, Any]:
        """The caller's session and CSRF token (an anonymous session is created if needed)."""
        return session_view(ensure_session(dash))

    @app.post("/api/login", access="public")
    def api_login() -> dict[str, Any]:
        body = json_body()
        try:
            session = authenticate(
                dash, str(body.get("username", "")), str(body.get("password", ""))
            )
        except LoginThrottled as exc:
            response = error_response(exc.status, exc.message, exc.reason)
            response.set_header("Retry-After", str(exc.retry_after))
            raise response from None
        return session_view(session)

    @app.post("/api/logout", access="viewer")
    def api_logout() -> dict[str, Any]:
        session = current_session()
        if session is not None:
            dash.sessions.drop(session.id)
        return {}
