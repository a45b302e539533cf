"""retry_delay_s (docs/jobs.md) and the default backoff between failed attempts (issue 10.8), with
the real farm in process and a fake clock: the dispatcher holds a failed task back until its
delay has passed, also across a master restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from farmhand.master.jobs.retries import DEFAULT_RETRY_DELAY_S, RETRY_DELAY_CAP_S, retry_delay
from protocol.errors import RpcError
from tests.unit.farmkit import FarmKit

pytestmark = pytest.mark.fast


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[FarmKit]:
    farm_kit = FarmKit(tmp_path)
    yield farm_kit
    farm_kit.close()


def fail_and_wait(kit: FarmKit, worker, waits: list[float], job_id: int) -> dict:
    """Fail each attempt; the next comes exactly after each wait in `waits`. The last order."""
    (order,) = kit.orders(worker)
    for wait in waits:
        kit.finish(worker, order, exit_code=1)
        if wait > 0:
            kit.clock.advance(wait - 0.01)
            assert kit.orders(worker) == [], f"retried before {wait}s"
            kit.clock.advance(0.01)
        (order,) = kit.orders(worker)
        assert order["job_id"] == job_id
    return order


def test_the_default_backoff_is_10s_then_doubling(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    job_id = kit.submit(max_attempts=3)
    fail_and_wait(kit, worker, [10.0, 20.0], job_id)
    assert kit.farm.board.jobs[job_id].tasks[0].attempts == 2


def test_retry_delay_s_sets_the_first_wait_and_0_retries_at_once(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    slow = kit.submit(max_attempts=3, retry_delay_s=2.5)
    last = fail_and_wait(kit, worker, [2.5, 5.0], slow)
    kit.finish(worker, last, exit_code=1)
    assert kit.job(slow).rec.status == "failed"
    now = kit.submit(max_attempts=3, retry_delay_s=0)
    fail_and_wait(kit, worker, [0.0, 0.0], now)


def test_a_held_task_leaves_room_for_other_work(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    flaky = kit.submit(max_attempts=2, priority=90)
    (order,) = kit.orders(worker)
    kit.finish(worker, order, exit_code=1)
    other = kit.submit(priority=10)
    (order,) = kit.orders(worker)
    assert order["job_id"] == other  # the waiting task does not block the slot
    kit.finish(worker, order)
    kit.clock.advance(DEFAULT_RETRY_DELAY_S)
    (order,) = kit.orders(worker)
    assert order["job_id"] == flaky


def test_the_wait_survives_a_restart(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    job_id = kit.submit(max_attempts=2, retry_delay_s=30)
    (order,) = kit.orders(worker)
    kit.finish(worker, order, exit_code=1)
    kit.clock.advance(20)
    kit.restart()
    worker = kit.worker("w1")
    assert kit.orders(worker) == []
    kit.clock.advance(9.9)
    assert kit.orders(worker) == []
    kit.clock.advance(0.1)
    (order,) = kit.orders(worker)
    assert order["job_id"] == job_id


def test_the_backoff_is_capped() -> None:
    from models.jobstore import JobRecord

    job = JobRecord(
        1, "j", "queued", 50, ["x"], "", 1, [], 100, None, {}, None, [], None, "fail_fast",
        0.0, 0.0, 1,
    )  # fmt: skip
    assert [retry_delay(job, n) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert retry_delay(job, 50) == RETRY_DELAY_CAP_S
    job.retry_delay_s = 3600.0
    assert retry_delay(job, 5) == 3600.0  # a longer first wait than the cap stays as asked
    job.retry_delay_s = 0.0
    assert retry_delay(job, 5) == 0.0


def test_a_bad_retry_delay_is_refused(kit: FarmKit) -> None:
    for bad in (-1, "soon", 10**9):
        with pytest.raises(RpcError) as caught:
            kit.submit(retry_delay_s=bad)
        assert "retry_delay_s" in caught.value.message
