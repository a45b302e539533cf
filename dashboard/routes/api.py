"""JSON endpoints: /api/<method> mirrors the master's JSON-RPC methods, plus a few the pages
need (overview, throughput, bulk job actions). Which methods, with which params, is read from
the master's method table (dashboard/surface.py: rpc.discover).

Reads are GET with query parameters (converted to the method's types here, so a bad number is a
400 with a message before the master is asked); writes are POST with a JSON object body, for
admins only. The master validates the rest and its -32602 answers become 400 as well.
"""

from __future__ import annotations

from typing import Any

import bottle
import gevent

from ..guard import HttpFailure, current_session
from ..rpc import MasterUnavailable, RpcError
from ..runtime import Dashboard
from ..surface import BOOL, INT, NUMBER
from .common import json_body, query_int

BULK_ACTIONS = {
    "pause": "jobs.pause",
    "resume": "jobs.resume",
    "cancel": "jobs.cancel",
    "requeue": "jobs.requeue",
    "priority": "jobs.set_priority",
    "delete": "jobs.delete",  # finished jobs only; answers {} (no status left to show)
}
MAX_BULK = 1000
METHOD_RULE = r"<method:re:[a-z]+\.[a-z_]+|status>"


def convert(name: str, kind: str, text: str) -> Any:
    if kind == NUMBER:
        try:
            return float(text)
        except ValueError:
            raise HttpFailure(400, f"{name} must be a number, not {text!r}", "bad_param") from None
    if kind == INT:
        try:
            return int(text)
        except ValueError:
            raise HttpFailure(
                400, f"{name} must be an integer, not {text!r}", "bad_param"
            ) from None
    if kind == BOOL:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise HttpFailure(400, f"{name} must be true or false, not {text!r}", "bad_param")
    return text


def read_params(allowed: dict[str, str], method: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in bottle.request.query:
        if name not in allowed:
            known = ", ".join(allowed) or "none"
            raise HttpFailure(
                400, f"{method}: unknown parameter {name!r} (known: {known})", "unknown_param"
            )
        params[name] = convert(name, allowed[name], bottle.request.query.getunicode(name) or "")
    return params


def acting_user() -> str:
    """The logged-in user a write is made for: the master records it in its audit log."""
    session = current_session()
    assert session is not None and session.username is not None  # the guard saw to it
    return session.username


def overview(dash: Dashboard) -> dict[str, Any]:
    """What the Overview page shows: status, jobs by status, throughput, recent events."""
    status = gevent.spawn(dash.call, "status")
    events = gevent.spawn(dash.call, "events.recent", {"limit": 20})
    by_status = dash.jobs_by_status()
    return {
        "status": status.get(),
        "jobs_by_status": by_status,
        "throughput": dash.metrics.throughput(),
        "events": events.get()["events"],
    }


def install(app: bottle.Bottle, dash: Dashboard) -> None:
    @app.get("/api/overview", access="viewer")
    def api_overview() -> dict[str, Any]:
        return overview(dash)

    @app.get("/api/throughput", access="viewer")
    def api_throughput() -> dict[str, Any]:
        since_s = query_int("since_s", 3600, minimum=60, maximum=3 * 3600)
        return {"points": dash.metrics.throughput(since_s=float(since_s or 3600))}

    @app.post("/api/jobs.bulk", access="admin")
    def api_jobs_bulk() -> dict[str, Any]:
        body = json_body()
        action, job_ids = body.get("action"), body.get("job_ids")
        if action not in BULK_ACTIONS:
            raise HttpFailure(400, f"action must be one of {', '.join(BULK_ACTIONS)}", "bad_param")
        if not isinstance(job_ids, list) or not job_ids or len(job_ids) > MAX_BULK:
            raise HttpFailure(400, f"job_ids must be a list of 1 to {MAX_BULK} ids", "bad_param")
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in job_ids):
            raise HttpFailure(400, "job_ids must be integers", "bad_param")
        extra = {"priority": body.get("priority")} if action == "priority" else {}
        user = acting_user()
        results = []
        for job_id in job_ids:
            try:
                view = dash.call(BULK_ACTIONS[action], {"job_id": job_id, **extra}, user)
                status = view.get("status", "deleted")
                results.append({"job_id": job_id, "ok": True, "status": status})
            except RpcError as exc:
                results.append({"job_id": job_id, "ok": False, "error": exc.message})
            except MasterUnavailable as exc:
                results.append({"job_id": job_id, "ok": False, "error": str(exc)})
        return {"results": results}

    @app.get(f"/api/{METHOD_RULE}", access="viewer")
    def api_read(method: str) -> Any:
        surface = dash.surface()
        if method not in surface.reads:
            raise HttpFailure(404, f"no such read method {method!r}", "no_such_method")
        session = current_session()
        if method in surface.admin_reads and not (session and session.admin):
            raise HttpFailure(403, "this needs an admin account", "admin_required")
        return dash.call(method, read_params(surface.reads[method], method))

    @app.post(f"/api/{METHOD_RULE}", access="admin")
    def api_write(method: str) -> Any:
        if method not in dash.surface().writes:
            raise HttpFailure(404, f"no such write method {method!r}", "no_such_method")
        return dash.call(method, json_body(), acting_user()) or {}
