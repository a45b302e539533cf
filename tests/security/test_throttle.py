"""Finding 9.5: bad hellos and console logins are throttled per peer host and logged as a
summary. 1,179 bad hellos a second from one host used to write one WARNING each (1 MB of log in
8 s); unauthenticated notifications and bad JSON lines could flood the log the same way.
"""

from __future__ import annotations

import pytest

from farmhand.master.peerguard import FAILURE_BURST, FAILURE_REFILL_S, FailureThrottle, LogLimiter
from tests.support import ConsoleClient, MasterProcess, RpcClient, RpcFailure

from .conftest import UNAUTHORIZED, admin_key

pytestmark = pytest.mark.timeout(60)

ATTEMPTS = 300


def bad_hello(connection: RpcClient, key: str = "fhk_0000_nope") -> RpcFailure:
    with pytest.raises(RpcFailure) as failure:
        connection.call("hello", role="worker", name="w1", proto=1, key=key)
    assert failure.value.code == UNAUTHORIZED
    return failure.value


def warnings_about(master: MasterProcess, text: str) -> list[str]:
    return [line for line in master.log().splitlines() if "WARNING" in line and text in line]


def test_bad_hellos_are_throttled_and_summarised(guarded: MasterProcess) -> None:
    reasons = []
    with RpcClient(guarded.port) as connection:
        for _ in range(ATTEMPTS):
            reasons.append(bad_hello(connection).reason)
    assert reasons[:FAILURE_BURST] == ["bad_key"] * FAILURE_BURST
    assert set(reasons[FAILURE_BURST + 2 :]) == {"too_many_failures"}
    # While the host is throttled even a good key waits: guessing gets nowhere.
    with RpcClient(guarded.port) as connection:
        failure = bad_hello(connection, admin_key(guarded))
        assert failure.reason == "too_many_failures"
        assert failure.error["data"]["retry_after_s"] > 0
    # Another host is not affected.
    with RpcClient(guarded.port, source="127.0.0.2") as other:
        assert other.call("hello", role="api", name="", proto=1, key=admin_key(guarded))
        assert other.call("ping") == "pong"
    assert len(warnings_about(guarded, "hello from")) <= 3, warnings_about(guarded, "hello")


def test_bad_console_logins_share_the_budget(guarded: MasterProcess) -> None:
    with ConsoleClient(guarded.port) as console:
        replies = [console.command("login fhk_0000_nope") for _ in range(FAILURE_BURST + 5)]
    assert "invalid or revoked key" in replies[0]
    assert "too many failed" in replies[-1]
    with RpcClient(guarded.port) as connection:
        assert bad_hello(connection).reason == "too_many_failures"


def test_refused_notifications_and_bad_lines_do_not_flood_the_log(guarded: MasterProcess) -> None:
    with RpcClient(guarded.port) as connection:
        for _ in range(ATTEMPTS):
            connection.notify("heartbeat")
            connection.send_raw(b'{"jsonrpc":"2.0","id":1,"method":\n')
        connection.send_raw(b'{"jsonrpc":"2.0","id":"last","method":"ping"}\n')
        while (reply := connection.read_message()).get("id") != "last":
            assert reply["error"]["code"] == -32700
        assert reply["error"]["code"] == UNAUTHORIZED
    lines = [line for line in guarded.log().splitlines() if "WARNING" in line or "INFO" in line]
    noisy = [line for line in lines if "farmhand.master.rpc:" in line or "transport:" in line]
    assert len(noisy) <= 4, noisy


# -- the parts, in-process with explicit time --------------------------------------------------


def test_a_throttle_refills_one_try_per_interval() -> None:
    throttle = FailureThrottle()
    now = 100.0
    for _ in range(FAILURE_BURST):
        assert throttle.wait_s("10.0.0.9", now) == 0
        throttle.failed("10.0.0.9", now)
    assert throttle.wait_s("10.0.0.9", now) == pytest.approx(FAILURE_REFILL_S)
    assert throttle.wait_s("10.0.0.8", now) == 0
    assert throttle.wait_s("10.0.0.9", now + FAILURE_REFILL_S) == 0
    throttle.failed("10.0.0.9", now + FAILURE_REFILL_S)
    assert throttle.wait_s("10.0.0.9", now + FAILURE_REFILL_S) > 0
    throttle.forget_idle(now + FAILURE_REFILL_S * (FAILURE_BURST + 1))
    assert not throttle._buckets


def test_a_log_limiter_logs_once_then_a_summary(caplog: pytest.LogCaptureFixture) -> None:
    limiter = LogLimiter("bad things", interval_s=60)
    with caplog.at_level("WARNING"):
        for i in range(100):
            limiter.warn("10.0.0.9", 1000.0 + i * 0.1, "bad thing from %s", "10.0.0.9")
        limiter.flush(1030.0)
        assert len(caplog.records) == 1
        limiter.flush(1061.0)
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "bad thing from 10.0.0.9",
        "99 more bad things from 10.0.0.9 in the last 61 s (not logged one by one)",
    ]
