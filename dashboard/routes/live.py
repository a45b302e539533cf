"""Live and plumbing routes: the event stream, /metrics, /healthz and static files."""

from __future__ import annotations

from collections.abc import Iterator

import bottle

from ..guard import HttpFailure
from ..metrics import render_prometheus
from ..render import STATIC_DIR
from ..rpc import MasterUnavailable, RpcError
from ..runtime import Dashboard
from ..sse import validate_topics


def install(app: bottle.Bottle, dash: Dashboard) -> None:
    @app.get("/events", access="viewer")
    def events() -> Iterator[bytes]:
        """Server-Sent Events for ?topics=jobs,tasks,log:12 (see dashboard.sse)."""
        try:
            topics = validate_topics(bottle.request.query.getunicode("topics") or "")
        except ValueError as exc:
            raise HttpFailure(400, str(exc), "bad_param") from None
        bottle.response.content_type = "text/event-stream; charset=utf-8"
        bottle.response.set_header("Cache-Control", "no-store")
        bottle.response.set_header("X-Accel-Buffering", "no")
        return dash.hub.stream(dash.hub.join(topics))

    @app.get("/metrics", access="public")
    def metrics() -> str:
        """Prometheus text format; aggregate numbers only, so it needs no login."""
        try:
            status = dash.call("status")
            by_status = dash.jobs_by_status()
        except (MasterUnavailable, RpcError):
            status, by_status = None, {}
        bottle.response.content_type = "text/plain; version=0.0.4; charset=utf-8"
        return render_prometheus(status, by_status, dash.metrics)

    @app.get("/healthz", access="public")
    def healthz() -> dict[str, object]:
        return {"ok": True, "master": dash.master.connected}

    @app.get("/static/<path:path>", access="public")
    def static(path: str) -> bottle.HTTPResponse:
        response = bottle.static_file(path, root=str(STATIC_DIR))
        response.set_header("Cache-Control", "no-cache")
        return response
