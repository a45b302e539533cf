"""Recovery (docs/states.md "lose", attempts as fencing tokens, "Crash recovery"): lost workers,
stale attempts, and the master restarting cleanly or after kill -9 while fake workers hold tasks.
Every test uses a 0.5 s heartbeat, so a silent worker is offline after 1.5 s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.fakeworker import (
    FakeWorker,
    job_view,
    submit,
    task_view,
    tasks_of,
    wait_job,
    wait_task,
)
from tests.support import MasterProcess, RpcClient

pytestmark = pytest.mark.timeout(30)

HEARTBEAT = ("--heartbeat-s", "0.5")


@pytest.fixture
def fakes() -> Iterator[list[FakeWorker]]:
    """Fake workers to close at the end of the test."""
    opened: list[FakeWorker] = []
    yield opened
    for fake in opened:
        fake.close()


@pytest.fixture
def start(fakes: list[FakeWorker]) -> Callable[..., FakeWorker]:
    def start_worker(port: int, name: str, **options) -> FakeWorker:
        fake = FakeWorker(port, name, **options)
        fakes.append(fake)
        return fake

    return start_worker


def log_of(api: RpcClient, task_id: int) -> str:
    return api.call("tasks.log", task_id=task_id, limit=1 << 20)["text"]


def completed_total(api: RpcClient) -> int:
    return api.call("status")["farm"]["tasks_completed_total"]


# -- lost workers ------------------------------------------------------------------------------
def test_a_worker_that_drops_mid_task_loses_it_without_an_attempt_counted(
    master: MasterProcess, api: RpcClient, start
) -> None:
    job_id = submit(api, "lost")
    one = start(master.port, "render-01")
    task = one.take()
    one.started(task["attempt"])
    wait_task(api, job_id, task["task_id"], "running")
    two = start(master.port, "render-02")  # idle: nothing else to do
    one.close()  # the connection drops mid-task
    again = two.take()
    assert again["task_id"] == task["task_id"]
    assert again["attempt"] != task["attempt"]
    view = task_view(api, job_id, task["task_id"])
    assert (view["worker"], view["attempts"]) == ("render-02", 0)
    assert "render-01 lost" in log_of(api, task["task_id"])
    two.complete(again)
    done = wait_job(api, job_id, "completed")
    assert task_view(api, job_id, task["task_id"])["attempts"] == 0
    assert done["tasks_by_status"]["completed"] == 1


def test_a_worker_that_stops_heartbeating_loses_its_task(
    master: MasterProcess, api: RpcClient, start
) -> None:
    job_id = submit(api, "silent")
    one = start(master.port, "render-01")
    task = one.take()
    one.started(task["attempt"])
    two = start(master.port, "render-02")
    one.stop_heartbeat()  # the socket stays open, but it says nothing more
    again = two.take(timeout=5)  # after 3 missed 0.5 s heartbeats
    assert again["task_id"] == task["task_id"]
    assert task_view(api, job_id, task["task_id"])["attempts"] == 0
    assert one.is_closed()
    # The silent worker comes back with its old result: stale, nothing changes.
    back = start(master.port, "render-01")
    stale = back.finished(task["attempt"], exit_code=0)
    assert stale["error"]["code"] == -32009
    assert stale["error"]["data"]["reason"] == "stale_attempt"
    view = task_view(api, job_id, task["task_id"])
    assert (view["status"], view["worker"]) == ("dispatched", "render-02")
    two.complete(again)
    wait_job(api, job_id, "completed")


# -- stale attempts ----------------------------------------------------------------------------
def test_reports_of_a_retried_attempt_are_stale_and_change_nothing(
    master: MasterProcess, api: RpcClient, start
) -> None:
    job_id = submit(api, "fenced", max_attempts=3, retry_delay_s=0)
    fake = start(master.port, "render-01")
    old = fake.take()
    assert fake.finished(old["attempt"], exit_code=1)["result"] == {}
    new = fake.take()
    assert new["attempt"] != old["attempt"]
    fake.started(new["attempt"])
    wait_task(api, job_id, new["task_id"], "running")
    # The old attempt speaks again: its output and progress are dropped, its result refused.
    fake.output(old["attempt"], "ghost output\n")
    fake.progress(old["attempt"], 90.0)
    stale = fake.finished(old["attempt"], exit_code=0)
    assert stale["error"]["code"] == -32009
    assert stale["error"]["data"]["reason"] == "stale_attempt"
    view = task_view(api, job_id, new["task_id"])
    assert (view["status"], view["attempts"], view["exit_code"]) == ("running", 1, None)
    assert job_view(api, job_id)["progress"] == 0
    assert "ghost output" not in log_of(api, new["task_id"])
    # The current attempt's output does count.
    fake.output(new["attempt"], "real output\n")
    fake.complete(new)
    assert "real output" in log_of(api, new["task_id"])
    wait_job(api, job_id, "completed")


def test_another_workers_report_for_an_attempt_is_stale(
    master: MasterProcess, api: RpcClient, start
) -> None:
    job_id = submit(api, "mine")
    owner = start(master.port, "render-01")
    task = owner.take()
    other = start(master.port, "render-02")
    stale = other.finished(task["attempt"], exit_code=0)
    assert stale["error"]["data"]["reason"] == "stale_attempt"
    assert task_view(api, job_id, task["task_id"])["status"] == "dispatched"
    owner.complete(task)
    wait_job(api, job_id, "completed")


def test_the_same_result_sent_again_is_acknowledged_and_counted_once(
    master: MasterProcess, api: RpcClient, start
) -> None:
    job_id = submit(api, "twice", frames="1-2")
    fake = start(master.port, "render-01")
    first = fake.take()
    before = completed_total(api)
    fake.complete(first)
    assert completed_total(api) == before + 1
    # The reply was lost; the worker sends the same task.finished again.
    again = fake.finished(first["attempt"], exit_code=0)
    assert again["result"] == {} and "error" not in again
    assert completed_total(api) == before + 1
    view = job_view(api, job_id)
    assert view["tasks_by_status"]["completed"] == 1
    assert view["progress"] == 50
    assert log_of(api, first["task_id"]).count("ended: exit code 0") == 1
    # A different outcome for it later is no more than a resend: nothing changes.
    assert fake.finished(first["attempt"], exit_code=1)["result"] == {}
    done = task_view(api, job_id, first["task_id"])
    assert (done["status"], done["exit_code"], done["attempts"]) == ("completed", 0, 0)
    fake.complete(fake.take())
    assert wait_job(api, job_id, "completed")["tasks_by_status"]["completed"] == 2


def test_a_canceled_attempt_is_stale(master: MasterProcess, api: RpcClient, start) -> None:
    job_id = submit(api, "stop")
    fake = start(master.port, "render-01")
    task = fake.take()
    api.call("jobs.cancel", job_id=job_id)
    assert fake.take_cancel()["attempt"] == task["attempt"]
    stale = fake.finished(task["attempt"], exit_code=0)
    assert stale["error"]["data"]["reason"] == "stale_attempt"
    assert task_view(api, job_id, task["task_id"])["status"] == "canceled"
    assert job_view(api, job_id)["status"] == "canceled"


# -- master restart ----------------------------------------------------------------------------
@pytest.fixture
def masters(tmp_path: Path) -> Iterator[Callable[[], MasterProcess]]:
    """Start masters one after another on the same data dir; each is stopped at the end."""
    started: list[MasterProcess] = []

    def start_master() -> MasterProcess:
        process = MasterProcess(tmp_path / "var", *HEARTBEAT)
        started.append(process)
        return process

    yield start_master
    for process in started:
        if process.proc.poll() is None:
            process.stop()
        else:
            process.close()


def running_task(first: MasterProcess, start, name: str = "render-01") -> tuple[int, dict]:
    """A one-task job whose task runs on a fake worker `name`."""
    with RpcClient(first.port) as api:
        job_id = submit(api, "survivor")
        fake = start(first.port, name)
        task = fake.take()
        fake.started(task["attempt"])
        fake.output(task["attempt"], "before the restart\n")
        wait_task(api, job_id, task["task_id"], "running")
    return job_id, task


def test_a_clean_restart_keeps_a_task_on_the_worker_that_still_holds_it(masters, start) -> None:
    first = masters()
    job_id, task = running_task(first, start)
    assert first.stop() == 0
    second = masters()
    with RpcClient(second.port) as api:
        view = task_view(api, job_id, task["task_id"])
        assert (view["status"], view["worker"]) == ("running", "render-01")
        back = start(second.port, "render-01", attempts=[task["attempt"]])
        # Past the heartbeat timeout the task is still its own: nothing requeued or canceled.
        back.expect_no_order("task.cancel", within=2.0)
        assert back.requests == []
        view = task_view(api, job_id, task["task_id"])
        assert (view["status"], view["worker"], view["attempts"]) == ("running", "render-01", 0)
        # The result it buffered while the master was away is accepted.
        back.output(task["attempt"], "after the restart\n")
        assert back.finished(task["attempt"], exit_code=0)["result"] == {}
        done = wait_job(api, job_id, "completed")
        assert done["tasks_by_status"]["completed"] == 1
        assert task_view(api, job_id, task["task_id"])["attempts"] == 0
        log = log_of(api, task["task_id"])
        assert "before the restart" in log and "after the restart" in log
        assert log.count("ended: exit code 0") == 1


def test_a_worker_back_without_the_attempt_gets_the_task_requeued(masters, start) -> None:
    first = masters()
    job_id, task = running_task(first, start)
    first.stop()
    second = masters()
    with RpcClient(second.port) as api:
        back = start(second.port, "render-01", attempts=[])
        again = back.take()  # requeued (no attempt counted) and dispatched anew
        assert again["task_id"] == task["task_id"]
        assert again["attempt"] != task["attempt"]
        assert task_view(api, job_id, task["task_id"])["attempts"] == 0
        stale = back.finished(task["attempt"], exit_code=0)
        assert stale["error"]["data"]["reason"] == "stale_attempt"
        back.complete(again)
        wait_job(api, job_id, "completed")


def test_a_worker_that_never_comes_back_has_its_task_requeued_after_the_timeout(
    masters, start
) -> None:
    first = masters()
    job_id, task = running_task(first, start)
    first.stop()
    second = masters()
    with RpcClient(second.port) as api:
        other = start(second.port, "render-02")
        assert task_view(api, job_id, task["task_id"])["status"] == "running"
        # once render-01's recovery grace has passed: 1.5 s heartbeat timeout + 5 s reconnect
        again = other.take(timeout=10)
        assert again["task_id"] == task["task_id"]
        assert again["attempt"] != task["attempt"]
        view = task_view(api, job_id, task["task_id"])
        assert (view["worker"], view["attempts"]) == ("render-02", 0)
        other.complete(again)
        wait_job(api, job_id, "completed")


def test_an_attempt_canceled_while_its_worker_was_away_is_canceled_on_hello(masters, start) -> None:
    first = masters()
    job_id, task = running_task(first, start)
    first.stop()
    second = masters()
    with RpcClient(second.port) as api:
        api.call("jobs.cancel", job_id=job_id)
        back = start(second.port, "render-01", attempts=[task["attempt"]])
        assert back.take_cancel()["attempt"] == task["attempt"]
        stale = back.finished(task["attempt"], exit_code=0)
        assert stale["error"]["data"]["reason"] == "stale_attempt"
        assert job_view(api, job_id)["status"] == "canceled"
        back.expect_no_order()


def test_kill_9_never_loses_an_acknowledged_result(masters, start) -> None:
    first = masters()
    with RpcClient(first.port) as api:
        job_id = submit(api, "crash", frames="1-3")
        fake = start(first.port, "render-01", slots=2)
        done, running = fake.take(), fake.take()
        fake.started(running["attempt"])
        # Acknowledged only once stored, with everything that happened before it.
        fake.complete(done)
    first.kill()  # kill -9 mid-job
    second = masters()
    with RpcClient(second.port) as api:
        kept = task_view(api, job_id, done["task_id"])
        assert (kept["status"], kept["exit_code"]) == ("completed", 0)
        assert task_view(api, job_id, running["task_id"])["status"] == "running"
        back = start(second.port, "render-01", slots=2, attempts=[running["attempt"]])
        # Its reply to the first result may have been lost: sending it again is fine.
        assert back.finished(done["attempt"], exit_code=0)["result"] == {}
        back.complete(running)
        back.complete(back.take())
        view = wait_job(api, job_id, "completed")
        assert view["tasks_by_status"]["completed"] == 3
        assert view["progress"] == 100
        tasks = tasks_of(api, job_id)
        assert [(task["status"], task["attempts"]) for task in tasks] == [("completed", 0)] * 3
        assert completed_total(api) == 2  # this master completed the other two, once each
        back.expect_no_order(within=0.3)
