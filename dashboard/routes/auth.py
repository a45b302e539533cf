"""Logging in and out, for browsers (form posts) and scripts (/api/session, /api/login)."""

from __future__ import annotations

import logging
from typing import Any

import bottle

from ..guard import HttpFailure, current_session, ensure_session, set_session_cookie
from ..render import render
from ..rpc import RpcError
from ..runtime import Dashboard
from ..sessions import Session
from .common import json_body, safe_next

log = logging.getLogger(__name__)


def session_view(session: Session) -> dict[str, Any]:
    return {"username": session.username, "admin": session.admin, "csrf": session.csrf}


def authenticate(dash: Dashboard, username: str, password: str) -> Session:
    """Check the password with the master; a fresh session on success, 401 otherwise."""
    if not username or not password:
        raise HttpFailure(400, "give a username and a password", "missing_param")
    try:
        user = dash.call("users.authenticate", {"username": username, "password": password})
    except RpcError as exc:
        if exc.code in (-32001, -32602):
            log.info("failed login for %r from %s", username, bottle.request.remote_addr)
            raise HttpFailure(401, "wrong username or password", "bad_login") from None
        raise
    if not user.get("enabled", True):
        raise HttpFailure(403, "this account is disabled", "disabled")
    session = dash.sessions.login(current_session(), user["username"], bool(user.get("admin")))
    set_session_cookie(dash, session)
    log.info("user %s logged in (admin=%s)", session.username, session.admin)
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
        session = authenticate(dash, str(body.get("username", "")), str(body.get("password", "")))
        return session_view(session)

    @app.post("/api/logout", access="viewer")
    def api_logout() -> dict[str, Any]:
        session = current_session()
        if session is not None:
            dash.sessions.drop(session.id)
        return {}
