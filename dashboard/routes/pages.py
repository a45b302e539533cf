"""The HTML pages. Each renders its layout and embeds its first data as JSON; the page's
script renders it, then keeps it current from the event stream."""

from __future__ import annotations

from typing import Any

import bottle
import gevent

from ..guard import HttpFailure, current_session
from ..metrics import JOB_STATUSES
from ..render import render_page
from ..runtime import Dashboard
from .api import overview
from .common import query_int, query_text

JOBS_PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 100
# What a webhook may subscribe to (the master's notices and `*`; docs/webhooks.md).
WEBHOOK_EVENTS = (
    "job.completed", "job.failed", "job.canceled", "client.offline", "pour", "keg.low",
    "keg.ended", "session.started", "sensor.alert", "sensor.cleared", "*",
)  # fmt: skip


def _page(name: str, title: str, initial: Any, **context: Any) -> str:
    session = current_session()
    assert session is not None  # the guard let only logged-in users through
    return render_page(name, title, session, initial, **context)


def _parallel(dash: Dashboard, **calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """Several master calls at once; the first failure is raised."""
    running = {
        key: gevent.spawn(dash.call, method, params) for key, (method, params) in calls.items()
    }
    gevent.joinall(list(running.values()))
    return {key: greenlet.get() for key, greenlet in running.items()}


def install(app: bottle.Bottle, dash: Dashboard) -> None:
    @app.get("/", access="viewer")
    def overview_page() -> str:
        return _page("overview", "Overview", overview(dash))

    @app.get("/clients", access="viewer")
    def clients_page() -> str:
        select = query_text("q", "all", max_length=1000)
        data = dash.call("clients.list", {"select": select})
        return _page("clients", "Clients", {"select": select, **data})

    @app.get("/clients/<name>", access="viewer")
    def client_page(name: str) -> str:
        data = dash.call("clients.get", {"name": name})  # -32004 is a 404 (guard.py)
        return _page("client", f"Client {name}", data, client=data)

    @app.get("/jobs", access="viewer")
    def jobs_page() -> str:
        status = query_text("status", None, max_length=20)
        if status is not None and status not in JOB_STATUSES:
            raise HttpFailure(400, f"status must be one of {', '.join(JOB_STATUSES)}", "bad_param")
        limit = query_int("limit", JOBS_PAGE_SIZE, minimum=1, maximum=500)
        offset = query_int("offset", 0, minimum=0)
        params = {"limit": limit, "offset": offset, **({"status": status} if status else {})}
        data = dash.call("jobs.list", params)
        return _page("jobs", "Jobs", {**params, "status": status, **data})

    @app.get("/jobs/<job_id:int>", access="viewer")
    def job_page(job_id: int) -> str:
        data = _parallel(
            dash, job=("jobs.get", {"job_id": job_id}), tasks=("tasks.list", {"job_id": job_id})
        )
        job = data["job"]
        return _page("job", f"Job {job_id}", {"job": job, **data["tasks"]}, job=job)

    @app.get("/taps", access="viewer")
    def taps_page() -> str:
        data = _parallel(
            dash,
            taps=("taps.list", {}),
            pours=("pours.list", {"limit": 20}),
            alerts=("alerts.list", {}),
        )
        active = {"active": data["alerts"]["active"]}
        return _page("taps", "Taps", {**data["taps"], **data["pours"], **active})

    @app.get("/taps/kiosk", access="viewer")
    def kiosk_page() -> str:
        return _page("kiosk", "Taps", dash.call("taps.list", {}))

    @app.get("/people/<username>", access="viewer")
    def user_page(username: str) -> str:
        data = _parallel(
            dash,
            stats=("stats.get", {"username": username}),
            pours=("pours.list", {"username": username, "limit": 200}),
            sessions=("sessions.list", {"limit": 1000}),
        )
        drinker = username if username != "guest" else "guest"
        sessions = [s for s in data["sessions"]["sessions"] if drinker in s["drinkers"]]
        initial = {"username": username, "stats": data["stats"], **data["pours"]}
        return _page("user", username, {**initial, "sessions": sessions[:50]}, username=username)

    @app.get("/kegs/<keg_id:int>", access="viewer")
    def keg_page(keg_id: int) -> str:
        data = _parallel(dash, kegs=("kegs.list", {}), stats=("stats.get", {"keg": keg_id}))
        keg = next((k for k in data["kegs"]["kegs"] if k["id"] == keg_id), None)
        if keg is None:
            raise HttpFailure(404, f"no keg {keg_id}", "no_such_keg")
        more = _parallel(
            dash,
            pours=("pours.list", {"tap": keg["tap"], "limit": 1000}),
            taps=("taps.list", {}),
        )
        pours = [p for p in more["pours"]["pours"] if p["keg_id"] == keg_id]
        sensors = [s["sensor"] for s in more["taps"]["sensors"] if s["tap"] == keg["tap"]]
        initial = {"keg": keg, "stats": data["stats"], "pours": pours, "sensors": sensors}
        return _page("keg", keg["beverage"], initial, keg=keg)

    @app.get("/people", access="viewer")
    def people_page() -> str:
        data = _parallel(
            dash,
            pours=("pours.list", {"limit": 50}),
            totals=("pours.totals", {}),
            users=("users.list", {}),
            tokens=("tokens.list", {}),
        )
        initial = {**data["pours"], "totals": data["totals"], **data["users"], **data["tokens"]}
        return _page("people", "Pours and people", initial)

    @app.get("/readings", access="viewer")
    def readings_page() -> str:
        data = _parallel(
            dash, readings=("readings.query", {"limit": 1}), alerts=("alerts.list", {})
        )
        initial = {"latest": data["readings"]["latest"], "rules": data["alerts"]["rules"]}
        return _page("readings", "Readings", initial)

    @app.get("/audit", access="admin")
    def audit_page() -> str:
        limit = query_int("limit", AUDIT_PAGE_SIZE, minimum=1, maximum=1000)
        data = dash.call("audit.list", {"limit": limit})
        return _page("audit", "Audit log", {"limit": limit, **data})

    @app.get("/webhooks", access="admin")
    def webhooks_page() -> str:
        data = dash.call("webhooks.list", {})
        return _page("webhooks", "Webhooks", data, events=WEBHOOK_EVENTS)

    @app.get("/admin", access="admin")
    def admin_page() -> str:
        data = _parallel(dash, keys=("keys.list", {}), users=("users.list", {}))
        return _page("admin", "Admin", {**data["keys"], **data["users"]})
