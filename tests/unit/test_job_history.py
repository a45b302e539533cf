"""Finished jobs leave memory and are read back on demand; jobs.delete and the retention (the job
farm in process: fake clock, FakePeer workers, real SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest

from farmhand.master.jobs import history
from farmhand.master.jobs.views import task_view
from farmhand.master.registry import RuntimeClient
from models.jobstore import JobStore
from protocol.errors import ErrorCode, RpcError
from tests.unit.farmkit import FarmKit, MasterKit, peer_of

pytestmark = [pytest.mark.fast, pytest.mark.timeout(30)]

DAY_S = 86400.0


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[FarmKit]:
    farm_kit = FarmKit(tmp_path)
    yield farm_kit
    farm_kit.close()


@pytest.fixture
def worker(kit: FarmKit) -> RuntimeClient:
    return kit.worker("w1")


def run_all(kit: FarmKit, worker: RuntimeClient, job_id: int, exit_code: int = 0) -> None:
    """Dispatch and finish tasks on the worker until none is left; the job has left memory."""
    while True:
        orders = kit.orders(worker)
        if not orders:
            assert job_id not in kit.farm.board.jobs
            return
        for order in orders:
            kit.farm.task_output(worker, order["attempt"], "rendered\n")
            kit.finish(worker, order, exit_code=exit_code)


def test_a_finished_job_leaves_memory_once_stored_and_its_views_still_answer(
    kit: FarmKit,
) -> None:
    job_id = kit.submit(frames="1-3", name="shot")
    worker = kit.worker("w1", slots=3)
    orders = kit.orders(worker)
    for order in orders[:-1]:
        kit.finish(worker, order)
    last = orders[-1]
    kit.farm.task_finished(worker, last["attempt"], 0, None)
    # Finished but not yet stored: it stays until the commit.
    assert job_id in kit.farm.board.jobs
    kit.farm.journal.flush()
    assert job_id not in kit.farm.board.jobs
    assert kit.farm.board.tasks == {}
    state = history.view_job(kit.farm, job_id)
    assert (state.rec.name, state.rec.status) == ("shot", "completed")
    assert [t.status for t in state.tasks] == ["completed"] * 3
    views, total, _ = history.list_jobs(kit.farm, "completed", 10, 0, kit.clock.wall())
    assert total == 1
    assert views[0]["tasks_by_status"]["completed"] == 3
    assert views[0]["progress"] == 100.0
    tasks, count = history.task_page(kit.farm, job_id, 1, 1)
    assert (count, [t.index for t in tasks]) == (3, [1])
    task = history.find_task(kit.farm, state.tasks[0].id)
    assert task_view(task, kit.clock.wall())["status"] == "completed"
    with pytest.raises(RpcError) as missing:
        history.view_job(kit.farm, job_id + 1)
    assert missing.value.code == ErrorCode.NOT_FOUND


def test_jobs_list_merges_live_and_stored_jobs_newest_first(
    kit: FarmKit, worker: RuntimeClient
) -> None:
    done = [kit.submit(frames="1") for _ in range(3)]
    for job_id in done:
        run_all(kit, worker, job_id)
    live = kit.submit(frames="1", name="live")
    kit.farm.pause(kit.farm.board.jobs[live])
    newest_done = kit.submit(frames="1")
    run_all(kit, worker, newest_done)
    assert set(kit.farm.board.jobs) == {live}
    views, total, _ = history.list_jobs(kit.farm, None, 10, 0, kit.clock.wall())
    assert total == 5
    assert [v["id"] for v in views] == [newest_done, live, *reversed(done)]
    views, total, _ = history.list_jobs(kit.farm, None, 2, 1, kit.clock.wall())
    assert (total, [v["id"] for v in views]) == (5, [live, done[2]])
    views, total, _ = history.list_jobs(kit.farm, "paused", 10, 0, kit.clock.wall())
    assert (total, [v["id"] for v in views]) == (1, [live])
    views, total, _ = history.list_jobs(kit.farm, "completed", 2, 2, kit.clock.wall())
    assert (total, [v["id"] for v in views]) == (4, [done[1], done[0]])


def test_a_restart_loads_only_the_live_jobs(kit: FarmKit, worker: RuntimeClient) -> None:
    done = kit.submit(frames="1-2")
    run_all(kit, worker, done)
    live = kit.submit(frames="1-2")
    farm = kit.restart()
    assert set(farm.board.jobs) == {live}
    assert len(farm.board.tasks) == 2
    assert history.view_job(farm, done).rec.status == "completed"
    assert kit.submit(frames="1") == live + 1  # ids go on after the stored ones


def test_requeue_loads_a_finished_job_back_and_runs_it_again(
    kit: FarmKit, worker: RuntimeClient
) -> None:
    job_id = kit.submit(frames="1-2", max_attempts=1, fail_policy="finish")
    run_all(kit, worker, job_id, exit_code=1)
    assert job_id not in kit.farm.board.jobs
    state = kit.farm.job_for_change(job_id)
    assert kit.farm.requeue(state) == 2
    kit.farm.journal.flush()
    assert kit.farm.board.jobs[job_id].rec.status == "queued"  # live again: it stays
    run_all(kit, worker, job_id)
    assert job_id not in kit.farm.board.jobs
    assert history.view_job(kit.farm, job_id).rec.status == "completed"


def test_a_verb_that_fails_on_a_loaded_back_job_lets_it_leave_again(
    kit: FarmKit, worker: RuntimeClient
) -> None:
    job_id = kit.submit(frames="1")
    run_all(kit, worker, job_id)
    state = kit.farm.job_for_change(job_id)
    with pytest.raises(RpcError) as refused:
        kit.farm.pause(state)
    assert refused.value.code == ErrorCode.CONFLICT
    kit.farm.journal.flush()
    assert job_id not in kit.farm.board.jobs


def test_requeue_task_of_a_job_out_of_memory(kit: FarmKit, worker: RuntimeClient) -> None:
    job_id = kit.submit(frames="1-2")
    run_all(kit, worker, job_id)
    first = history.view_job(kit.farm, job_id).tasks[0]
    task = kit.farm.requeue_task(first.id)
    assert task.status == "queued"
    assert kit.farm.board.jobs[job_id].rec.status == "active"


def test_a_dependency_that_failed_and_left_memory_still_holds_its_dependents(
    kit: FarmKit, worker: RuntimeClient
) -> None:
    failed = kit.submit(frames="1", max_attempts=1)
    waiting = kit.submit(frames="1", depends_on=[failed])
    run_all(kit, worker, failed, exit_code=1)
    assert failed not in kit.farm.board.jobs
    assert kit.orders(worker) == []
    blocked = history.view_job(kit.farm, waiting)
    assert kit.farm.board.dependency_status(failed) == "failed"
    assert blocked.rec.status == "queued"
    # After a restart, and for a job submitted later, the same.
    farm = kit.restart()
    assert farm.board.dependency_status(failed) == "failed"
    later = kit.submit(frames="1", depends_on=[failed])
    worker = kit.worker("w2")  # the restart's registry knows no w1
    assert kit.orders(worker) == []
    done = kit.submit(frames="1")
    run_all(kit, worker, done)
    after_done = kit.submit(frames="1", depends_on=[done])
    assert [o["job_id"] for o in kit.orders(worker)] == [after_done]
    assert later in farm.board.jobs


def test_a_result_sent_again_after_its_job_left_memory_is_acknowledged(kit: FarmKit) -> None:
    job_id = kit.submit(frames="1")
    worker = kit.worker("w1")
    (order,) = kit.orders(worker)
    kit.finish(worker, order)
    assert job_id not in kit.farm.board.jobs
    again = kit.farm.task_finished(worker, order["attempt"], 0, None)
    kit.farm.journal.flush()
    assert again.get(timeout=1) == {}
    assert peer_of(worker).take("task.cancel") == []


# -- jobs.delete -------------------------------------------------------------------------------
def test_delete_removes_a_finished_job_its_rows_and_logs(
    kit: FarmKit, worker: RuntimeClient
) -> None:
    job_id = kit.submit(frames="1-2", max_attempts=1)
    run_all(kit, worker, job_id, exit_code=1)
    folder = kit.tmp_path / "logs" / f"job-{job_id}"
    kit.farm.logs.read(history.view_job(kit.farm, job_id).tasks[0], 0, None)  # writes are done
    assert folder.is_dir()
    deleted: list[int] = []
    kit.farm.on_job_deleted.append(deleted.append)
    kit.farm.delete(job_id)
    assert deleted == [job_id]
    assert not folder.exists()
    store = JobStore(kit.store)
    assert store.load_jobs() == []
    assert store.load_tasks() == []
    assert store.load_blocklist() == []
    with pytest.raises(RpcError) as gone:
        kit.farm.delete(job_id)
    assert gone.value.code == ErrorCode.NOT_FOUND


def test_delete_refuses_a_live_job_and_takes_one_still_in_memory(kit: FarmKit) -> None:
    live = kit.submit(frames="1-2")
    with pytest.raises(RpcError) as refused:
        kit.farm.delete(live)
    assert (refused.value.code, refused.value.reason) == (ErrorCode.CONFLICT, "bad_job_state")
    assert live in kit.farm.board.jobs
    canceled = kit.submit(frames="1")
    kit.farm.cancel(kit.farm.board.jobs[canceled])
    assert canceled in kit.farm.board.jobs  # not stored yet
    gevent.spawn(kit.farm.journal.flush)  # the master's flusher: delete waits for it
    kit.farm.delete(canceled)
    assert canceled not in kit.farm.board.jobs
    kit.farm.journal.flush()
    assert [j.id for j in JobStore(kit.store).load_jobs()] == [live]


# -- retention -------------------------------------------------------------------------------
def test_retention_deletes_jobs_finished_longer_ago_than_its_days(tmp_path: Path) -> None:
    kit = FarmKit(tmp_path, job_retention_days=7)
    worker = kit.worker("w1")
    try:
        old = kit.submit(frames="1")
        run_all(kit, worker, old)
        kit.clock.advance(5 * DAY_S)
        recent = kit.submit(frames="1")
        run_all(kit, worker, recent)
        live = kit.submit(frames="1")
        expired: list[list[int]] = []
        kit.farm.on_expired.append(expired.append)
        kit.clock.advance(2 * DAY_S + 60)
        assert kit.farm.expire(kit.clock.wall()) == [old]
        assert expired == [[old]]
        assert [j.id for j in JobStore(kit.store).load_jobs()] == [recent, live]
        assert not (tmp_path / "logs" / f"job-{old}").exists()
        kit.farm.logs.read(history.view_job(kit.farm, recent).tasks[0], 0, None)  # written
        assert (tmp_path / "logs" / f"job-{recent}").exists()
        kit.clock.advance(5 * DAY_S)
        assert kit.farm.expire(kit.clock.wall()) == [recent]
    finally:
        kit.close()


def test_retention_is_off_by_default(kit: FarmKit, worker: RuntimeClient) -> None:
    job_id = kit.submit(frames="1")
    run_all(kit, worker, job_id)
    kit.clock.advance(10_000 * DAY_S)
    assert kit.farm.expire(kit.clock.wall()) == []
    assert history.view_job(kit.farm, job_id).rec.status == "completed"


def test_console_delete_and_the_retention_flag(tmp_path: Path) -> None:
    master = MasterKit(tmp_path, job_retention_days=3.0)
    try:
        assert master.services.farm.job_retention_s == 3 * DAY_S
        job_id = master.call("jobs.submit", name="c", argv=["true"])["job_id"]
        assert "is queued: only completed, failed or canceled" in master.console(f"delete {job_id}")
        master.call("jobs.cancel", job_id=job_id)
        assert master.console(f"delete {job_id}") == f"job {job_id} deleted"
        assert "no job" in master.console(f"delete {job_id}")
        assert "usage: delete ID" in master.console("delete")
    finally:
        master.close()
