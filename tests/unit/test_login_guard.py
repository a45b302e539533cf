"""The dashboard's login defences (issue 9, finding 6), in-process with the time passed in:
where a login may send the browser (never another site) and the backoff after failed logins
(per user, per address, per device cookie; growing, bounded, forgotten)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest

from dashboard.logins import (
    DEVICE_LIMIT,
    IP_LIMIT,
    USER_LIMIT,
    DeviceCookies,
    LoginThrottle,
    login_keys,
)
from dashboard.routes.common import safe_next

pytestmark = pytest.mark.fast

# Each one a browser (WHATWG URL parsing) or Python's urljoin turns into another site.
BYPASSES = [
    "/\t/evil.example",  # the finding: tab and newline are dropped anywhere in a URL
    "/\n/evil.example",
    "/\r/evil.example",
    "/\t\n/evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",  # backslash is a slash in http(s) URLs
    "\\/evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    " //evil.example",  # leading spaces and C0 controls are stripped
    "\x00//evil.example",
    "\x1f//evil.example",
    "\t//evil.example",
    "https://evil.example",
    "http:evil.example",
    "//evil.example@farm",
    "javascript:alert(1)",
    "data:text/html,hi",
    "evil.example",
    "./evil",
    "/\u3000/evil.example",  # non-ASCII: refused rather than reasoned about
    "/" + "a" * 3000,
    "",
    None,
]
SAFE = ["/", "/jobs", "/jobs/12?tab=log#end", "/clients?select=role%3Dworker", "/%2F/x", "/a//b"]


@pytest.mark.parametrize("target", BYPASSES)
def test_safe_next_refuses_every_way_to_another_site(target: str | None) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", SAFE)
def test_safe_next_keeps_a_same_site_path(target: str) -> None:
    assert safe_next(target) == target
    resolved = urlsplit(urljoin("http://farm:8080/login", target))
    assert resolved.netloc == "farm:8080" and resolved.scheme == "http"


# -- backoff ------------------------------------------------------------------------------------
ALICE = login_keys("alice", "10.0.0.5", device=None)


def fail(throttle: LoginThrottle, keys: list[tuple[str, str]], now: float, times: int = 1) -> None:
    for _ in range(times):
        assert throttle.begin(keys, now) == 0, "expected the attempt to go through"


def test_a_user_gets_a_few_free_tries_then_a_growing_delay() -> None:
    throttle = LoginThrottle()
    fail(throttle, ALICE, now=0, times=USER_LIMIT.free)
    assert throttle.begin(ALICE, 0) == 0  # the first try over the allowance still runs…
    assert throttle.begin(ALICE, 0.5) == pytest.approx(0.5)  # …and then 1 s to wait
    assert throttle.begin(ALICE, 1.0) == 0
    assert throttle.begin(ALICE, 1.0) == pytest.approx(2.0)
    assert throttle.begin(ALICE, 3.0) == 0
    assert throttle.begin(ALICE, 3.0) == pytest.approx(4.0)
    # A refused try does not count: waiting out the delay always gets a try.
    for now in (3.5, 4, 5, 6.9):
        assert throttle.begin(ALICE, now) > 0
    assert throttle.begin(ALICE, 7.0) == 0


def test_the_delay_is_capped_and_failures_are_forgotten() -> None:
    throttle = LoginThrottle()
    now = 0.0
    for _ in range(40):
        now += throttle.begin(ALICE, now)
        throttle.begin(ALICE, now)
    assert throttle.begin(ALICE, now) <= USER_LIMIT.max_delay_s
    # After a quiet while the slate is clean: a user locked by an attacker is not locked forever.
    later = now + USER_LIMIT.max_delay_s + USER_LIMIT.forget_after_s
    fail(throttle, ALICE, now=later, times=USER_LIMIT.free)


def test_a_success_clears_the_user_and_gives_the_address_its_try_back() -> None:
    throttle = LoginThrottle()
    fail(throttle, ALICE, now=0, times=USER_LIMIT.free - 1)
    assert throttle.begin(ALICE, 0) == 0
    throttle.succeeded(ALICE)
    fail(throttle, ALICE, now=0, times=USER_LIMIT.free)  # a full allowance again
    assert throttle.failures(("ip", "10.0.0.5")) == 2 * USER_LIMIT.free - 1


def test_an_attempt_without_an_answer_is_not_counted() -> None:
    throttle = LoginThrottle()
    for _ in range(USER_LIMIT.free * 3):
        assert throttle.begin(ALICE, 0) == 0
        throttle.abandoned(ALICE)  # the master was down: no password was checked


def test_parallel_guesses_are_counted_before_their_answers() -> None:
    throttle = LoginThrottle()
    admitted = sum(throttle.begin(ALICE, 0) == 0 for _ in range(100))
    assert admitted == USER_LIMIT.free + 1


def test_one_address_trying_many_users_is_slowed_down() -> None:
    throttle = LoginThrottle()
    for n in range(IP_LIMIT.free + 1):
        assert throttle.begin(login_keys(f"user{n}", "10.0.0.9", None), 0) == 0
    assert throttle.begin(login_keys("someone", "10.0.0.9", None), 0.1) > 0
    assert throttle.begin(login_keys("someone", "10.0.0.10", None), 0.1) == 0


def test_a_device_cookie_lets_its_owner_in_while_the_name_is_locked() -> None:
    throttle, devices = LoginThrottle(), DeviceCookies()
    token = devices.issue("alice")
    fail(throttle, ALICE, now=0, times=USER_LIMIT.free + 1)
    assert throttle.begin(ALICE, 0) > 0  # an attacker without the cookie waits
    own = login_keys("alice", "10.0.0.5", device=devices.owner(token) == "alice" and token)
    assert own == [("device", token)]
    assert throttle.begin(own, 0) == 0
    # The cookie's own allowance is small: a stolen cookie is no brute-force pass.
    fail(throttle, own, now=0, times=DEVICE_LIMIT.free)
    assert throttle.begin(own, 0) > 0
    assert devices.owner("forged") is None
    assert login_keys("bob", "10.0.0.5", device=None) == [("user", "bob"), ("ip", "10.0.0.5")]


def test_memory_stays_bounded() -> None:
    throttle, devices = LoginThrottle(max_entries=100), DeviceCookies(max_entries=10)
    for n in range(1000):
        throttle.begin(login_keys(f"u{n}", f"10.1.{n // 256}.{n % 256}", None), n)
        devices.issue(f"u{n}")
    assert throttle.size() <= 100 and devices.size() <= 10
