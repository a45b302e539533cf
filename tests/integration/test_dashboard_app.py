"""The dashboard's WSGI app against a real master process, called directly (no HTTP server):
every route, who may use it (anonymous, viewer, admin), CSRF and Origin refusals, Host checks,
escaping, pagination, bad parameters, the event stream and /metrics."""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.app import create_app
from dashboard.runtime import Dashboard, Settings
from dashboard.sessions import SessionStore
from dashboard.testclient import Response, WsgiClient
from farmhand.options import MasterAddress
from tests.integration.fakeworker import FakeWorker
from tests.support import MasterProcess, Program, RpcClient, agent, wait_for

ADMIN, VIEWER = ("root", "root-password-1"), ("viewer", "viewer-password-1")
XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    process = MasterProcess(tmp_path_factory.mktemp("dash") / "var")
    with RpcClient(process.port) as rpc:
        rpc.call("users.create", username=ADMIN[0], password=ADMIN[1], admin=True)
        rpc.call("users.create", username=VIEWER[0], password=VIEWER[1])
    yield process
    process.stop()


@pytest.fixture(scope="module")
def dash(master: MasterProcess) -> Iterator[Dashboard]:
    dashboard = Dashboard(Settings(master=MasterAddress(master.host, master.port)))
    dashboard.start()
    assert dashboard.master.wait_connected(10)
    yield dashboard
    dashboard.stop()


@pytest.fixture
def rpc(master: MasterProcess) -> Iterator[RpcClient]:
    with RpcClient(master.port) as client:
        yield client


def login(dash: Dashboard, user: tuple[str, str]) -> tuple[WsgiClient, str]:
    """A client logged in as user, and its CSRF token."""
    client = WsgiClient(create_app(dash))
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    reply = client.post("/login", form={"username": user[0], "password": user[1], "csrf": token})
    assert reply.status == 303, reply.text
    session = client.get("/api/session").json()
    assert session["username"] == user[0]
    return client, session["csrf"]


@pytest.fixture
def admin(dash: Dashboard) -> tuple[WsgiClient, str]:
    return login(dash, ADMIN)


@pytest.fixture
def viewer(dash: Dashboard) -> tuple[WsgiClient, str]:
    return login(dash, VIEWER)


def write(client: WsgiClient, csrf: str, method: str, body: dict) -> Response:
    return client.post(f"/api/{method}", json_body=body, headers={"X-CSRF-Token": csrf})


def submit(rpc: RpcClient, name: str = "job", frames: str = "1") -> int:
    return rpc.call("jobs.submit", name=name, argv=["true"], frames=frames)["job_id"]


PAGES = ["/", "/clients", "/jobs", "/taps", "/people", "/readings"]
READS = [
    "status", "clients.list", "jobs.list", "taps.list", "kegs.list", "pours.list", "pours.totals",
    "presence.list", "readings.query", "events.recent", "devices.list", "users.list", "tokens.list",
]  # fmt: skip


# -- anonymous -----------------------------------------------------------------------------------
def test_anonymous_is_sent_to_login_and_refused_by_the_api(dash: Dashboard) -> None:
    client = WsgiClient(create_app(dash))
    for path in [*PAGES, "/admin", "/jobs/1"]:
        reply = client.get(path)
        assert reply.status == 303 and reply.headers["Location"].startswith("/login?next="), path
    for path in ["/api/jobs.list", "/api/overview", "/events?topics=jobs"]:
        reply = client.get(path)
        assert reply.status == 401 and reply.json()["error"]["reason"] == "login_required", path
    login_page = client.get("/login")
    assert login_page.status == 200 and 'name="csrf"' in login_page.text
    assert client.get("/healthz").json() == {"ok": True, "master": True}
    assert client.get("/static/vendor/pico/pico.min.css").status == 200
    assert client.get("/static/js/lib.js").status == 200
    assert client.get("/nope").status == 404
    assert client.get("/static/../app.py").status in (403, 404)


def test_session_cookie_is_opaque_httponly_strict(dash: Dashboard) -> None:
    client = WsgiClient(create_app(dash))
    cookie = client.get("/login").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    value = cookie.split(";")[0].split("=", 1)[1]
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", value)  # a random id, no pickled data


def test_login_rotates_the_session_and_wrong_passwords_fail(dash: Dashboard) -> None:
    client = WsgiClient(create_app(dash))
    page = client.get("/login")
    before = client.cookies["fh_session"]
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    wrong = client.post("/login", form={"username": "root", "password": "nope", "csrf": token})
    assert wrong.status == 401 and "wrong username or password" in wrong.text
    missing = client.post("/login", form={"username": "root", "password": "x"})
    assert missing.status == 403  # no CSRF token
    good = {"username": ADMIN[0], "password": ADMIN[1], "csrf": token, "next": "//evil.example"}
    reply = client.post("/login", form=good)
    assert reply.status == 303 and reply.headers["Location"].endswith("/")  # never off-site
    assert client.cookies["fh_session"] != before
    logout = client.post("/logout", form={"csrf": client.get("/api/session").json()["csrf"]})
    assert logout.status == 303 and "fh_session" not in client.cookies


def test_script_login_through_the_api(dash: Dashboard) -> None:
    client = WsgiClient(create_app(dash))
    csrf = client.get("/api/session").json()["csrf"]
    body = {"username": VIEWER[0], "password": VIEWER[1]}
    session = client.post("/api/login", json_body=body, headers={"X-CSRF-Token": csrf}).json()
    assert session["username"] == "viewer" and session["admin"] is False
    assert client.get("/api/jobs.list").status == 200
    assert write(client, session["csrf"], "logout", {}).status == 200
    assert client.get("/api/jobs.list").status == 401


# -- Host, Origin, CSRF --------------------------------------------------------------------------
def test_host_header_must_be_ours(dash: Dashboard) -> None:
    app = create_app(dash)
    assert WsgiClient(app, host="evil.example:8080").get("/login").status == 400
    assert WsgiClient(app, host="localhost:8080").get("/login").status == 200
    assert WsgiClient(app, host="[::1]:8080").get("/login").status == 200
    named = Dashboard(Settings(allowed_hosts=frozenset({"farm.lan"})))  # /login asks no master
    assert WsgiClient(create_app(named), host="farm.lan").get("/login").status == 200


def test_writes_need_the_csrf_token_and_our_origin(admin: tuple[WsgiClient, str]) -> None:
    client, csrf = admin
    body = {"name": "csrf", "argv": ["true"]}
    no_token = client.post("/api/jobs.submit", json_body=body)
    assert no_token.status == 403 and no_token.json()["error"]["reason"] == "bad_csrf"
    wrong = client.post("/api/jobs.submit", json_body=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status == 403
    evil = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
    cross = client.post("/api/jobs.submit", json_body=body, headers=evil)
    assert cross.status == 403 and cross.json()["error"]["reason"] == "bad_origin"
    ours = {"X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:8080"}
    assert client.post("/api/jobs.submit", json_body=body, headers=ours).status == 200
    form_post = client.post("/logout", form={})
    assert form_post.status == 403  # a form without the token is refused too


# -- viewer vs admin -------------------------------------------------------------------------------
def test_viewer_reads_but_cannot_change_anything(
    viewer: tuple[WsgiClient, str], rpc: RpcClient
) -> None:
    client, csrf = viewer
    job_id = submit(rpc)
    for path in [*PAGES, f"/jobs/{job_id}"]:
        page = client.get(path)
        assert page.status == 200, path
        assert 'href="/admin"' not in page.text and 'data-admin=""' in page.text
    for method in READS:
        assert client.get(f"/api/{method}").status == 200, method
    assert client.get("/admin").status == 403
    assert client.get("/api/keys.list").status == 403
    for method, body in [
        ("jobs.submit", {"name": "x", "argv": ["true"]}),
        ("jobs.cancel", {"job_id": job_id}),
        ("clients.disable", {"select": "all"}),
        ("keys.create", {"role": "worker"}),
        ("users.create", {"username": "mallory", "admin": True}),
        ("jobs.bulk", {"action": "pause", "job_ids": [job_id]}),
    ]:
        reply = write(client, csrf, method, body)
        assert reply.status == 403 and reply.json()["error"]["reason"] == "admin_required", method
    assert rpc.call("jobs.get", job_id=job_id)["status"] != "canceled"


def test_admin_uses_every_page_and_read(admin: tuple[WsgiClient, str], rpc: RpcClient) -> None:
    client, _ = admin
    job_id = submit(rpc, frames="1-3")
    task_id = rpc.call("tasks.list", job_id=job_id)["tasks"][0]["id"]
    for path in [*PAGES, "/admin", f"/jobs/{job_id}"]:
        page = client.get(path)
        assert page.status == 200 and 'href="/admin"' in page.text, path
        assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    for method in [*READS, "keys.list"]:
        assert client.get(f"/api/{method}").status == 200, method
    assert client.get(f"/api/jobs.get?job_id={job_id}").json()["tasks_total"] == 3
    assert len(client.get(f"/api/tasks.list?job_id={job_id}").json()["tasks"]) == 3
    assert "text" in client.get(f"/api/tasks.log?task_id={task_id}").json()
    overview = client.get("/api/overview").json()
    assert set(overview) == {"status", "jobs_by_status", "throughput", "events"}
    assert client.get("/api/throughput?since_s=600").json() == {"points": overview["throughput"]}
    assert client.get("/api/jobs.get?job_id=99999").status == 404
    assert client.get("/jobs/99999").status == 404


def test_admin_writes(admin: tuple[WsgiClient, str], rpc: RpcClient, master: MasterProcess) -> None:
    client, csrf = admin

    def ok(method: str, body: dict) -> dict:
        reply = write(client, csrf, method, body)
        assert reply.status == 200, (method, reply.text)
        return reply.json()

    job_id = ok("jobs.submit", {"name": "w", "argv": ["true"], "frames": "1-2", "priority": 10})[
        "job_id"
    ]
    assert ok("jobs.pause", {"job_id": job_id})["status"] == "paused"
    assert ok("jobs.resume", {"job_id": job_id})["status"] != "paused"
    assert ok("jobs.set_priority", {"job_id": job_id, "priority": 90})["priority"] == 90
    assert ok("jobs.cancel", {"job_id": job_id})["status"] == "canceled"
    task_id = rpc.call("tasks.list", job_id=job_id)["tasks"][0]["id"]
    assert ok("tasks.requeue", {"task_id": task_id})["status"] == "queued"
    ok("jobs.requeue", {"job_id": job_id})
    bulk = ok("jobs.bulk", {"action": "priority", "job_ids": [job_id, 424242], "priority": 5})
    assert [r["ok"] for r in bulk["results"]] == [True, False]
    with agent(master.port, "dash-w1") as worker_conn:
        assert ok("clients.disable", {"select": "dash-w1"})["changed"] == ["dash-w1"]
        assert ok("clients.enable", {"select": "dash-w1"})["changed"] == ["dash-w1"]
        assert write(client, csrf, "clients.forget", {"name": "dash-w1"}).status == 409
        worker_conn.close()
    wait_for(lambda: not rpc.call("clients.list", select="dash-w1")["clients"][0]["online"])
    assert ok("clients.forget", {"name": "dash-w1"}) == {}
    assert ok("taps.configure", {"tap": "t1", "meter": "keg9.flow0", "idle_s": 1})["name"] == "t1"
    assert ok("kegs.start", {"tap": "t1", "beverage": "Stout", "volume_ml": 19500})["remaining_ml"]
    ok("kegs.end", {"tap": "t1"})
    ok("users.create", {"username": "dana", "display_name": "Dana"})
    assert ok("tokens.assign", {"reader": "core.rfid", "token": "abc123", "username": "dana"})
    ok("tokens.revoke", {"reader": "core.rfid", "token": "abc123"})
    key = ok("keys.create", {"role": "worker", "name": "render"})
    assert key["key"].startswith("fhk_")
    assert ok("keys.revoke", {"key_id": key["key_id"]})["revoked"]
    assert all("key" not in k for k in client.get("/api/keys.list").json()["keys"])


def test_bulk_delete_takes_finished_jobs_only(
    admin: tuple[WsgiClient, str], rpc: RpcClient
) -> None:
    client, csrf = admin
    finished = submit(rpc, frames="1")
    rpc.call("jobs.cancel", job_id=finished)
    live = submit(rpc, frames="1")
    reply = write(client, csrf, "jobs.bulk", {"action": "delete", "job_ids": [finished, live]})
    assert reply.status == 200, reply.text
    assert [(r["ok"], r.get("status")) for r in reply.json()["results"]] == [
        (True, "deleted"),
        (False, None),
    ]
    assert client.get(f"/api/jobs.get?job_id={finished}").status == 404
    assert rpc.call("jobs.get", job_id=live)["status"] == "queued"


def test_an_admin_pours_from_a_simulated_kegboard_through_the_dashboard(
    master: MasterProcess, admin: tuple[WsgiClient, str], rpc: RpcClient, tmp_path: Path
) -> None:
    """The taps page's simulator form: POST /api/sim.swipe and /api/sim.pour reach a real
    `hwagent.py --device sim://`, whose KBSP bytes become a pour for the card's owner."""
    client, csrf = admin
    board = Program(
        "hwagent.py",
        *("--master", master.address, "--name", "dsim", "--driver", "kegboard"),
        *("--device", "sim://"),
        log_path=tmp_path / "dsim.log",
    )
    try:
        rpc.call("taps.configure", tap="simtap", meter="dsim.flow0", idle_s=0.5)
        rpc.call("users.create", username="erin")
        rpc.call("tokens.assign", reader="core.rfid", token="e714", username="erin")
        wait_for(lambda: rpc.call("clients.list", select="dsim online")["clients"])
        assert write(client, csrf, "sim.swipe", {"agent": "dsim", "token": "e714"}).status == 200
        reply = write(client, csrf, "sim.pour", {"tap": "simtap", "ml": 100, "seconds": 0.2})
        assert reply.status == 200, reply.text
        [pour] = wait_for(lambda: rpc.call("pours.list", tap="simtap")["pours"], what="a pour")
        assert pour["username"] == "erin" and pour["volume_ml"] == pytest.approx(100, abs=0.5)
        gone = write(client, csrf, "sim.pour", {"tap": "no-such-tap", "ml": 100})
        assert gone.status == 404
    finally:
        board.stop()


# -- escaping, pagination, bad params --------------------------------------------------------------
def test_user_strings_are_escaped(admin: tuple[WsgiClient, str], rpc: RpcClient) -> None:
    client, _ = admin
    job_id = rpc.call("jobs.submit", name=XSS, argv=["echo", XSS])["job_id"]
    for path in [f"/jobs/{job_id}", "/jobs", "/"]:
        page = client.get(path).text
        assert XSS not in page and "alert(1)</script>" not in page, path
    detail = client.get(f"/jobs/{job_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail  # the heading, escaped
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in detail  # the embedded JSON
    api = client.get(f"/api/jobs.get?job_id={job_id}")
    assert api.headers["Content-Type"].startswith("application/json")
    assert api.json()["name"] == XSS  # data stays data; the page renders it with textContent
    assert api.headers["X-Content-Type-Options"] == "nosniff"


def test_jobs_are_paginated_on_the_server(admin: tuple[WsgiClient, str], rpc: RpcClient) -> None:
    client, _ = admin
    ids = [submit(rpc, name=f"page-{i}") for i in range(7)]
    total = client.get("/api/jobs.list?limit=1").json()["total"]
    page = client.get("/api/jobs.list?limit=3&offset=2").json()
    assert page["total"] == total and [j["id"] for j in page["jobs"]] == ids[::-1][2:5]
    html = client.get("/jobs?limit=3&offset=3").text
    data = re.search(r'id="initial-data">(.*?)</script>', html, re.S).group(1)
    assert '"offset":3' in data and '"limit":3' in data and f'"id":{ids[-4]}' in data
    queued = client.get("/api/jobs.list?status=queued&limit=500").json()
    assert all(job["status"] == "queued" for job in queued["jobs"])


@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs.list?limit=abc",
        "/api/jobs.list?limit=0",
        "/api/jobs.list?status=nope",
        "/api/jobs.list?bogus=1",
        "/api/kegs.list?active=maybe",
        "/api/clients.list?select=role%3D",
        "/api/readings.query?since=yesterday",
        "/api/throughput?since_s=1",
        "/jobs?offset=-1",
        "/jobs?status=nope",
        "/events?topics=bogus",
        "/events?topics=log:x",
    ],
)
def test_bad_params_are_400_with_a_message(admin: tuple[WsgiClient, str], path: str) -> None:
    client, _ = admin
    reply = client.get(path)
    assert reply.status == 400, reply.text
    if path.startswith(("/api/", "/events")):
        assert reply.json()["error"]["message"]
    else:
        assert 'class="error"' in reply.text


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("jobs.submit", {"name": "no argv"}),
        ("jobs.submit", {"name": "x", "argv": "not a list"}),
        ("jobs.submit", {"name": "x", "argv": ["true"], "frames": "z-1"}),
        ("jobs.set_priority", {"job_id": 1, "priority": 500}),
        ("jobs.bulk", {"action": "explode", "job_ids": [1]}),
        ("jobs.bulk", {"action": "pause", "job_ids": []}),
        ("clients.disable", {"select": "role="}),
    ],
)
def test_bad_write_params_are_400(admin: tuple[WsgiClient, str], method: str, body: dict) -> None:
    client, csrf = admin
    reply = write(client, csrf, method, body)
    assert reply.status == 400 and reply.json()["error"]["message"], reply.text


def test_write_bodies_must_be_json_objects(admin: tuple[WsgiClient, str]) -> None:
    client, csrf = admin
    headers = {"X-CSRF-Token": csrf}
    assert client.post("/api/jobs.submit", form={"name": "x"}, headers=headers).status == 415
    raw = client.post(
        "/api/jobs.submit", body=b"[1]", headers={**headers, "Content-Type": "application/json"}
    )
    assert raw.status == 400
    assert write(client, csrf, "hello", {}).status == 404  # not mirrored
    assert client.get("/api/users.authenticate").status == 404


# -- live ------------------------------------------------------------------------------------------
def test_event_stream_relays_master_events(
    admin: tuple[WsgiClient, str], rpc: RpcClient, dash: Dashboard
) -> None:
    client, _ = admin
    reply = client.get("/events?topics=jobs,log:777", stream=True)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/event-stream")
    assert reply.stream is not None
    assert next(reply.stream).startswith(b"retry:")
    assert next(reply.stream) == b'event: master\ndata: {"up":true}\n\n'
    assert "log:777" in dash.master.topics  # subscribed upstream while someone watches
    job_id = submit(rpc, name="streamed")
    frame = next(reply.stream)
    assert frame.startswith(b"event: jobs\n") and f'"id":{job_id}'.encode() in frame
    reply.close()  # the browser went away
    assert "log:777" not in dash.master.topics


def test_metrics_in_prometheus_format(dash: Dashboard) -> None:
    text = WsgiClient(create_app(dash)).get("/metrics").text
    for name in [
        "farmhand_master_up 1",
        'farmhand_clients_online{role="worker"}',
        'farmhand_jobs{status="queued"}',
        "farmhand_tasks_completed_total",
        "farmhand_pours_total",
        "farmhand_database_up 1",
        "farmhand_database_pending_writes",
        "farmhand_database_reconnects_total 0",
        'farmhand_dispatch_latency_seconds_bucket{le="+Inf"}',
        "# TYPE farmhand_dispatch_latency_seconds histogram",
    ]:
        assert name in text


def test_master_down_is_503_not_a_crash() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    dash = Dashboard(Settings(master=MasterAddress("127.0.0.1", port)))
    dash.start()
    try:
        client = WsgiClient(create_app(dash))
        csrf = client.get("/api/session").json()["csrf"]
        body = {"username": "a", "password": "b"}
        reply = client.post("/api/login", json_body=body, headers={"X-CSRF-Token": csrf})
        assert reply.status == 503 and "unreachable" in reply.json()["error"]["message"]
        assert "farmhand_master_up 0" in client.get("/metrics").text
    finally:
        dash.stop()


def test_sessions_expire() -> None:
    store = SessionStore(idle_s=10, max_age_s=100)
    session = store.create(now=0)
    assert store.get(session.id, now=9) is session
    assert store.get(session.id, now=18) is session  # used at 9: still fresh
    assert store.get(session.id, now=29) is None
    other = store.login(None, "u", False, now=0)
    for t in range(5, 100, 5):
        assert store.get(other.id, now=t) is other
    assert store.get(other.id, now=101) is None


def test_create_admin_command(master: MasterProcess, tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support import ROOT

    command = [sys.executable, "-m", "dashboard", "create-admin", "boss"]
    command += ["--master", master.address]
    done = subprocess.run(
        command, input="boss-password-1\n", capture_output=True, text=True, cwd=ROOT, timeout=30
    )
    assert done.returncode == 0, done.stderr
    with RpcClient(master.port) as rpc:
        user = rpc.call("users.authenticate", username="boss", password="boss-password-1")
    assert user["admin"] is True


# -- the allow-list is the master's method table ---------------------------------------------------
def test_the_api_serves_what_the_masters_rpc_discover_lists(
    viewer: tuple[WsgiClient, str], admin: tuple[WsgiClient, str]
) -> None:
    """/api/ serves the methods rpc.discover describes (procs.list included, which no hand-kept
    list had), with the params it declares; a viewer may read the description itself."""
    client, _ = viewer
    described = client.get("/api/rpc.discover").json()
    assert "jobs.list" in {entry["name"] for entry in described["methods"]}
    assert client.get("/api/procs.list").status == 200
    bad = client.get("/api/procs.list?agent=x")
    assert bad.status == 400 and "known: node" in bad.text
    assert client.get("/api/users.authenticate?username=a&password=b").status == 404
    admin_client, csrf = admin
    assert write(admin_client, csrf, "procs.reload", {}).status == 400  # served: node is missing


def test_a_jobs_preview_is_served_as_an_image(
    dash: Dashboard, master: MasterProcess, rpc: RpcClient
) -> None:
    image = b"\x89PNG\r\n\x1a\n" + b"not really more of a png"
    # Submitted first and on top: jobs of earlier tests may still be queued on this master.
    job_id = rpc.call(
        "jobs.submit", name="previewed", argv=["true"], outputs="*.png", priority=100
    )["job_id"]
    fake = FakeWorker(master.port, "preview-worker")
    try:
        task = fake.take()
        assert task["job_id"] == job_id, task
        fake.complete(task)
        client, _ = login(dash, VIEWER)
        assert client.get(f"/jobs/{job_id}/preview").status == 404  # none yet
        assert client.get(f"/jobs/previews?ids={job_id}").json() == {"previews": []}
        data = base64.b64encode(image).decode()
        reply = fake.request(
            "task.preview", task_id=task["task_id"], frame=None, content_type="image/png",
            width=20, height=10, data=data,
        )  # fmt: skip
        assert reply.get("result") == {}, reply
        served = client.get(f"/jobs/{job_id}/preview")
        assert served.status == 200 and served.body == image
        assert served.headers["Content-Type"] == "image/png"
        assert served.headers["Cache-Control"] == "no-cache"
        [listed] = client.get(f"/jobs/previews?ids={job_id},{job_id + 1}").json()["previews"]
        assert (listed["job_id"], listed["width"], listed["height"]) == (job_id, 20, 10)
        versioned = client.get(f"/jobs/{job_id}/preview?v={listed['version']}")
        assert "immutable" in versioned.headers["Cache-Control"]
        newest = client.get("/api/jobs.previews?limit=1").json()["previews"]
        assert newest[0]["job_id"] == job_id
        assert client.get("/jobs/previews?ids=x").status == 400
        anonymous = WsgiClient(create_app(dash))
        assert anonymous.get(f"/jobs/{job_id}/preview").status in (302, 303, 401)
    finally:
        fake.close()
