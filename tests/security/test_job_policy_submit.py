"""The job policy at submit (issue 9 finding 8, issue 10 finding 4): what can never run is refused
by `jobs.submit` with a clear error naming the limit, and nothing is stored. A real master over a
real socket; the worker side of the policy is in test_job_policy_worker.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from farmhand.master.jobs.submit import (
    MAX_ARG_STRLEN,
    MAX_EXEC_BYTES,
    SUBMIT_PARAMS,
    largest_order_bytes,
    read_submission,
)
from farmhand.master.params import parse_params
from protocol.framing import DEFAULT_MAX_LINE_BYTES
from tests.integration.fakeworker import FakeWorker, error_of
from tests.support import MasterProcess, RpcClient

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterProcess]:
    process = MasterProcess(tmp_path / "var", "--heartbeat-s", "0.5")
    yield process
    process.stop()


BIG = "x" * 200_000  # the 200 KB argument of the finding
# Fits in one submit line (under the master's 1 MiB limit), but its orders do not fit in the
# worker's: JSON writes each \x01 as 6 bytes, and each {job} grows from 5 to 19 characters.
ORDER_BOMB = ["r", "\x01" * 87_000, "\x01" * 87_000, *["{job}"] * 300]

REFUSED = [
    pytest.param(
        {"cwd": "../../.."}, -32602, "cwd_escapes", "leaves the worker's work dir", id="cwd .."
    ),
    pytest.param({"cwd": "a/../../b"}, -32602, "cwd_escapes", "leaves", id="cwd a/../../b"),
    pytest.param({"cwd": "..\x00"}, -32602, "bad_cwd", "NUL", id="cwd NUL"),
    pytest.param(
        {"argv": ["r", "a\x00b"]}, -32602, "bad_argv", "argv[1] contains a NUL", id="argv NUL"
    ),
    pytest.param({"env": {"A=B": "1"}}, -32602, "bad_env", "'A=B'", id="env name ="),
    pytest.param({"env": {"": "1"}}, -32602, "bad_env", "''", id="env name empty"),
    pytest.param({"env": {"A\x00": "1"}}, -32602, "bad_env", "NUL", id="env name NUL"),
    pytest.param(
        {"env": {"A": "1\x002"}}, -32602, "bad_env", "env A contains a NUL", id="env value NUL"
    ),
    pytest.param({"argv": ["r", BIG]}, -32013, "arg_too_long", "MAX_ARG_STRLEN", id="200 KB arg"),
    pytest.param({"env": {"BLOB": BIG}}, -32013, "arg_too_long", "MAX_ARG_STRLEN", id="200 KB env"),
    pytest.param(
        {"argv": ["r", *["y" * 100_000] * 6]}, -32013, "exec_too_large", "524288", id="600 KB argv"
    ),
    pytest.param(
        {"argv": ORDER_BOMB}, -32013, "order_too_large", "1048576", id="order over the line"
    ),
]


@pytest.mark.parametrize(("change", "code", "reason", "words"), REFUSED)
def test_what_can_never_run_is_refused_at_submit(
    api: RpcClient, change: dict[str, Any], code: int, reason: str, words: str
) -> None:
    params = {"name": "bad", "argv": ["render"], **change}
    assert len(orjson.dumps(params)) < DEFAULT_MAX_LINE_BYTES - 200  # the master can read it
    failure = error_of(api, "jobs.submit", **params)
    assert (failure.code, failure.reason) == (code, reason), failure.error
    assert words in failure.error["message"]
    assert api.call("jobs.list")["total"] == 0  # nothing was stored


def test_limits_count_placeholders_at_their_longest_value(api: RpcClient) -> None:
    # 131,060 bytes plus "{frames}": with frames up to 10 it fits, up to 10^9 it does not.
    arg = "z" * 131_060 + "{frames}"
    ok = api.call("jobs.submit", name="ok", argv=["r", arg], frames="1-10")
    assert ok["tasks"] == 10
    failure = error_of(api, "jobs.submit", name="bad", argv=["r", arg], frames="1,1000000000")
    assert (failure.code, failure.reason) == (-32013, "arg_too_long")
    assert "once placeholders are filled in" in failure.error["message"]
    assert failure.error["data"]["limit"] == MAX_ARG_STRLEN


def test_what_stays_inside_the_limits_is_accepted(api: RpcClient) -> None:
    accepted = [
        {"cwd": "shots/../renders"},  # `..` that stays inside the work dir
        {"cwd": "/mnt/render"},  # absolute: the worker's --allow-cwd decides
        {"env": {"LD_PRELOAD": "x.so", "PATH": "/bin"}},  # the worker's deny list decides
        {"argv": ["r", "y" * (MAX_ARG_STRLEN - 1)]},
        {"argv": ["r", *["y" * 100_000] * 5]},
    ]
    for change in accepted:
        assert api.call("jobs.submit", name="fine", **{"argv": ["r"], **change})["tasks"] == 1


def test_a_one_mebibyte_argv_is_refused_and_never_reaches_a_worker(
    master: MasterProcess, api: RpcClient
) -> None:
    # Issue 10 finding 4: ~1 MiB of argv made a task.run longer than the worker's line limit;
    # the worker dropped the connection and got the same order again, forever.
    argv = ["render", *["w" * 65_000] * 16]
    with FakeWorker(master.port, "render-01") as worker:
        failure = error_of(api, "jobs.submit", name="huge", argv=argv)
        assert failure.code == -32013
        assert failure.reason in ("exec_too_large", "order_too_large")
        worker.expect_no_order()
    assert api.call("jobs.list")["total"] == 0


def test_the_estimate_is_never_below_a_real_order(master: MasterProcess, api: RpcClient) -> None:
    # The submit check computes the largest task.run a job can produce: it must hold for the
    # orders the dispatcher really sends (a drift between the two would let a job through).
    params = {
        "name": "real",
        "argv": ["render", "{frame}", "{frames}", "{task}", "{job}", "\x01" * 1000],
        "frames": "1-3,999999990-999999999",
        "chunk": 4,
        "env": {"A": "\n" * 500},
        "cwd": "shots",
        "timeout_s": 12.5,
        "progress_regex": r"(\d+)%",
    }
    estimate = largest_order_bytes(
        read_submission(parse_params("jobs.submit", SUBMIT_PARAMS, dict(params)), set(), 10)
    )
    result = api.call("jobs.submit", **params)
    with FakeWorker(master.port, "render-01", slots=result["tasks"]) as worker:
        orders = [worker.next_order() for _ in range(result["tasks"])]
    sizes = [len(orjson.dumps(order)) for order in orders]
    assert max(sizes) <= estimate < DEFAULT_MAX_LINE_BYTES
    assert estimate - max(sizes) < 200  # a tight bound, not a guess
    assert MAX_EXEC_BYTES == 512 * 1024
