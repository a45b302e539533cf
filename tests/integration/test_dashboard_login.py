"""The dashboard's login against a real master (issue 9, finding 6): no redirect to another
site after logging in, and backoff after failed logins (per user, per address, with a device
cookie that lets the real user in while an attacker hammers the name)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from urllib.parse import quote, urljoin, urlsplit

import pytest

from dashboard.app import create_app
from dashboard.logins import IP_LIMIT, USER_LIMIT
from dashboard.runtime import Dashboard, Settings
from dashboard.testclient import Response, WsgiClient
from farmhand.options import MasterAddress
from tests.support import MasterProcess, RpcClient

pytestmark = pytest.mark.timeout(120)

ALICE = ("alice", "alice-password-1")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    process = MasterProcess(tmp_path_factory.mktemp("login") / "var")
    with RpcClient(process.port) as rpc:
        rpc.call("users.create", username=ALICE[0], password=ALICE[1], admin=True)
    yield process
    process.stop()


@pytest.fixture
def dash(master: MasterProcess) -> Iterator[Dashboard]:
    """A fresh dashboard per test, so each starts with no failed logins on record."""
    address = MasterAddress(master.host, master.port)
    dashboard = Dashboard(Settings(master=address, allowed_hosts=frozenset({"farm.lan"})))
    dashboard.start()
    assert dashboard.master.wait_connected(10)
    yield dashboard
    dashboard.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def browser(dash: Dashboard, address: str = "127.0.0.1") -> tuple[WsgiClient, str]:
    client = WsgiClient(create_app(dash), host="farm.lan:8080")
    client.remote_addr = address
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    return client, token.group(1)


def log_in(client: WsgiClient, csrf: str, user: tuple[str, str], next_path: str = "") -> Response:
    form = {"username": user[0], "password": user[1], "csrf": csrf}
    if next_path:
        form["next"] = next_path
    return client.post("/login", form=form)


def test_a_login_never_redirects_to_another_site(dash: Dashboard) -> None:
    """Was: next="/\\t/evil.example" → 303 Location: http://evil.example."""
    client, csrf = browser(dash)
    reply = log_in(client, csrf, ALICE, next_path="/\t/evil.example")
    assert reply.status == 303
    target = urlsplit(urljoin("http://farm.lan:8080/login", reply.headers["Location"]))
    assert target.netloc == "farm.lan:8080", reply.headers["Location"]
    # A same-site path is kept.
    client, csrf = browser(dash)
    reply = log_in(client, csrf, ALICE, next_path="/jobs?status=failed")
    assert reply.headers["Location"].endswith("/jobs?status=failed")


@pytest.mark.parametrize(
    "target", ["/\t/evil.example", "/\n/evil.example", "/\\evil.example", "//evil.example"]
)
def test_the_login_form_does_not_carry_another_site(dash: Dashboard, target: str) -> None:
    client = WsgiClient(create_app(dash), host="farm.lan:8080")
    page = client.get(f"/login?next={quote(target)}")
    carried = re.search(r'name="next" value="([^"]*)"', page.text)
    assert carried and html.unescape(carried.group(1)) == "/", page.text


def test_failed_logins_lock_the_name_with_a_clear_message(dash: Dashboard) -> None:
    dash.logins.clock = clock = Clock()
    client, csrf = browser(dash, "10.0.0.5")
    for _ in range(USER_LIMIT.free + 1):
        assert log_in(client, csrf, (ALICE[0], "wrong")).status == 401
    refused = log_in(client, csrf, (ALICE[0], "wrong"))
    assert refused.status == 429
    assert "too many failed logins" in refused.text and "try again in 1 s" in refused.text
    assert refused.headers["Retry-After"] == "1"
    # While locked the right password is refused too (no oracle), and so is the JSON API.
    assert log_in(client, csrf, ALICE).status == 429
    api = client.post(
        "/api/login",
        json_body={"username": ALICE[0], "password": ALICE[1]},
        headers={"X-CSRF-Token": csrf},
    )
    assert api.status == 429 and api.json()["error"]["reason"] == "throttled"
    assert api.headers["Retry-After"] == "1"
    clock.now += 1
    assert log_in(client, csrf, ALICE).status == 303  # waited out: in


def test_the_real_user_gets_in_with_a_device_cookie_while_the_name_is_attacked(
    dash: Dashboard,
) -> None:
    dash.logins.clock = Clock()
    own, csrf = browser(dash, "192.168.1.20")
    assert log_in(own, csrf, ALICE).status == 303
    assert "fh_device" in own.cookies
    own.post("/logout", form={"csrf": own.get("/api/session").json()["csrf"]})
    attacker, attacker_csrf = browser(dash, "10.9.9.9")
    for _ in range(USER_LIMIT.free + 1):
        log_in(attacker, attacker_csrf, (ALICE[0], "guess"))
    assert log_in(attacker, attacker_csrf, ALICE).status == 429
    # The same name from the browser that logged in before: not locked.
    csrf = own.get("/api/session").json()["csrf"]
    assert log_in(own, csrf, ALICE).status == 303


def test_one_address_is_slowed_down_across_user_names(dash: Dashboard) -> None:
    dash.logins.clock = Clock()
    client, csrf = browser(dash, "10.0.0.66")
    for n in range(IP_LIMIT.free + 1):
        assert log_in(client, csrf, (f"user{n}", "guess")).status == 401
    assert log_in(client, csrf, ("someone-else", "guess")).status == 429
    other, other_csrf = browser(dash, "10.0.0.67")
    assert log_in(other, other_csrf, ALICE).status == 303


def test_a_forwarded_for_header_does_not_change_the_address(dash: Dashboard) -> None:
    dash.logins.clock = Clock()
    client, csrf = browser(dash, "10.0.0.70")
    for n in range(IP_LIMIT.free + 1):
        form = {"username": f"user{n}", "password": "x", "csrf": csrf}
        client.post("/login", form=form, headers={"X-Forwarded-For": f"1.2.3.{n}"})
    assert log_in(client, csrf, ("another", "guess")).status == 429
