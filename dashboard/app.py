"""The dashboard's WSGI application, built by a factory: `create_app(Dashboard(settings))`.

Routes live in dashboard/routes/ (one module per concern) and stay thin: they check
parameters, call the master through `Dashboard.call`, and return dicts (JSON) or pages.
Every route passes through `Guard` (Host, session, access, CSRF, error mapping).
"""

from __future__ import annotations

import bottle
import orjson

from .guard import Guard, error_response
from .routes import api, auth, live, pages, previews
from .runtime import Dashboard

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def create_app(dash: Dashboard) -> bottle.Bottle:
    """A bottle app serving `dash` (which the caller starts and stops)."""
    app = bottle.Bottle()
    app.uninstall(bottle.JSONPlugin)  # replaced by one that encodes with orjson
    app.config["farmhand.dashboard"] = dash
    app.install(bottle.JSONPlugin(json_dumps=_dumps))
    app.install(Guard(dash))

    @app.hook("after_request")
    def security_headers() -> None:
        for name, value in SECURITY_HEADERS.items():
            bottle.response.set_header(name, value)
        if bottle.request.path.startswith("/api/"):
            bottle.response.set_header("Cache-Control", "no-store")

    for status in (404, 405, 500):

        @app.error(status)
        def not_routed(error: bottle.HTTPError) -> str:
            message = error.body if error.status_code != 500 else "internal error (logged)"
            response = error_response(error.status_code, str(message), "http")
            bottle.response.content_type = response.content_type
            return (
                str(response.body, "utf-8") if isinstance(response.body, bytes) else response.body
            )

    auth.install(app, dash)
    api.install(app, dash)
    previews.install(app, dash)
    pages.install(app, dash)
    live.install(app, dash)
    return app
