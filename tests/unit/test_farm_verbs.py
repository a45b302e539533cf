"""The job farm driven in process through its verbs (fake clock, FakePeer workers, real SQLite):
the board, the dispatcher, workers' reports, retries and the blocklist, operators' actions, and
workers lost, reconciled and recovered after a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from farmhand.master.jobs.states import TaskStatus
from models.jobstore import JobStore
from protocol.backoff import AGENT_RECONNECT_MAX_S
from protocol.errors import ErrorCode, RpcError
from protocol.selector import parse_selector
from tests.unit.farmkit import HEARTBEAT_TIMEOUT_S, FarmKit, peer_of

# A restarted master waits a heartbeat timeout plus an agent's longest reconnect wait.
RECOVERY_GRACE_S = HEARTBEAT_TIMEOUT_S + AGENT_RECONNECT_MAX_S

pytestmark = [pytest.mark.fast, pytest.mark.timeout(30)]


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[FarmKit]:
    farm_kit = FarmKit(tmp_path)
    yield farm_kit
    farm_kit.close()


def statuses(kit: FarmKit, job_id: int) -> list[str]:
    return [task.status for task in kit.job(job_id).tasks]


# -- submit and the board ----------------------------------------------------------------------
def test_submit_stores_the_job_and_ids_continue_after_a_restart(kit: FarmKit) -> None:
    first = kit.submit(frames="1-3")
    second = kit.submit(frames="1-2")
    assert (first, second) == (1, 2)
    assert [task.id for task in kit.farm.board.jobs[second].tasks] == [4, 5]
    stored = JobStore(kit.store).load_jobs()
    assert [job.id for job in stored] == [1, 2]  # stored by submit itself, before any flush
    kit.restart()
    third = kit.submit(frames="1")
    assert third == 3
    assert kit.farm.board.jobs[third].tasks[0].id == 6


def test_an_order_leaves_only_once_its_dispatch_is_committed(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    kit.submit(frames="1")
    kit.farm.dispatcher.run_once(kit.clock.mono())
    assert peer_of(worker).sent("task.run") == []
    kit.farm.journal.flush()
    (order,) = peer_of(worker).take()
    assert order["argv"] == ["render", "0"]
    (task,) = JobStore(kit.store).load_tasks()
    assert (task.status, task.attempt, task.worker) == ("dispatched", order["attempt"], "w1")


def test_on_an_idle_farm_a_new_job_is_dispatched_by_its_own_insert(kit: FarmKit) -> None:
    # One commit from submit to start: the insert stores the dispatch records, the order
    # leaves right after it, without waiting for a journal flush.
    kit.farm.dispatcher.plans_new_jobs = True  # as the running dispatcher does
    worker = kit.worker("w1", slots=2)
    flushes = kit.farm.journal.flushes
    job_id = kit.submit(frames="1-3")
    orders = peer_of(worker).take()
    assert [order["task_id"] for order in orders] == [1, 2]
    assert kit.farm.journal.flushes == flushes
    stored = {task.id: task for task in JobStore(kit.store).load_tasks()}
    assert [(stored[o["task_id"]].status, stored[o["task_id"]].attempt) for o in orders] == [
        ("dispatched", order["attempt"]) for order in orders
    ]
    assert stored[3].status == "queued"
    assert JobStore(kit.store).load_jobs()[0].status == "active"
    state = kit.farm.board.jobs[job_id]
    assert statuses(kit, job_id) == ["dispatched", "dispatched", "queued"]
    assert kit.farm.dispatcher.free_slots(worker) == 0 and len(state.in_flight) == 2
    assert (
        "attempt " + orders[0]["attempt"] + " on w1"
        in kit.farm.logs.read(state.tasks[0], 0, None)["text"]
    )
    kit.finish(worker, orders[0])
    (third,) = kit.orders(worker)
    assert third["task_id"] == 3


def test_a_stored_result_has_its_output_and_footer_on_disk_already(kit: FarmKit) -> None:
    """Found in the full suite: a master killed right after committing a task's result had not
    yet written that task's output and `ended:` line (they waited up to 10 ms for the writer
    thread), so the log of a completed task showed only its header. The journal now has the
    task logs write what is queued before every commit."""
    worker = kit.worker("w1")
    job_id = kit.submit(frames="1")
    (order,) = kit.orders(worker)
    kit.farm.task_started(worker, order["attempt"])
    kit.farm.task_output(worker, order["attempt"], "rendered frame 1\n")
    kit.finish(worker, order)  # the result, and the commit that stores it
    on_disk = kit.farm.logs.path(job_id, order["task_id"]).read_text()
    assert "rendered frame 1" in on_disk
    assert f"attempt {order['attempt']} ended: exit code 0" in on_disk


def test_a_new_job_waits_its_turn_when_others_are_queued(kit: FarmKit) -> None:
    kit.farm.dispatcher.plans_new_jobs = True
    worker = kit.worker("w1", slots=1)
    first = kit.submit(frames="1-2")
    (order,) = peer_of(worker).take()
    assert order["job_id"] == first
    second = kit.submit(frames="1", priority=90)  # first's task 2 waits: no shortcut
    assert peer_of(worker).take() == []
    kit.finish(worker, order)
    assert kit.orders(worker)[0]["job_id"] == second


def test_a_failed_insert_gives_the_planned_slots_back(kit: FarmKit) -> None:
    kit.farm.dispatcher.plans_new_jobs = True
    worker = kit.worker("w1", slots=1)

    def refuse(*_args: object) -> None:
        raise RuntimeError("disk full")

    kit.farm.jobstore.insert_job = refuse  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        kit.submit(frames="1")
    assert peer_of(worker).take() == [] and kit.farm.board.jobs == {}
    assert kit.farm.dispatcher.free_slots(worker) == 1 and kit.farm.board.load == {}


def test_dispatch_takes_priority_then_age_and_needs_the_tags(kit: FarmKit) -> None:
    worker = kit.worker("w1", tags=("linux",))
    low = kit.submit(frames="1", priority=10)
    gpu = kit.submit(frames="1", priority=90, tags=["gpu"])
    high = kit.submit(frames="1", priority=80)
    assert [kit.orders(worker)[0]["job_id"]] == [high]
    kit.finish(worker, {"attempt": kit.farm.board.jobs[high].tasks[0].attempt})
    assert [kit.orders(worker)[0]["job_id"]] == [low]
    assert statuses(kit, gpu) == ["queued"]


def test_free_slots_fill_round_robin_across_workers(kit: FarmKit) -> None:
    one, two = kit.worker("w1", slots=2), kit.worker("w2", slots=2)
    kit.submit(frames="1-3")
    kit.dispatch()
    assert (len(peer_of(one).take()), len(peer_of(two).take())) in ((2, 1), (1, 2))


# -- workers' reports --------------------------------------------------------------------------
def test_started_progress_output_and_finished_move_the_task(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    job_id = kit.submit(frames="1")
    (order,) = kit.orders(worker)
    attempt = order["attempt"]
    kit.farm.task_started(worker, attempt)
    task = kit.farm.board.jobs[job_id].tasks[0]
    assert (task.status, task.started) == ("running", kit.clock.wall())
    kit.farm.task_progress(worker, attempt, 140.0)
    assert task.progress == 100.0  # clamped
    kit.farm.task_progress(worker, attempt, 42.0)
    kit.farm.task_output(worker, attempt, "frame 1 done\n")
    kit.clock.advance(3.0)
    done = kit.farm.task_finished(worker, attempt, 0, None)
    assert not done.ready()  # answered once committed
    kit.farm.journal.flush()
    assert done.get(timeout=1) == {}
    assert (task.status, task.exit_code, task.progress) == ("completed", 0, 100.0)
    assert kit.job(job_id).rec.status == "completed"
    log = kit.farm.logs.read(task, 0, None)["text"]
    assert log.splitlines()[1:] == [
        "frame 1 done",
        f"--- farmhand: attempt {attempt} ended: exit code 0 after 3.0s ---",
    ]


def test_reports_of_a_stale_attempt_change_nothing(kit: FarmKit) -> None:
    worker, other = kit.worker("w1"), kit.worker("w2")
    job_id = kit.submit(frames="1")
    kit.dispatch()
    holder = worker if peer_of(worker).sent("task.run") else other
    (order,) = peer_of(holder).take()
    stranger = other if holder is worker else worker
    kit.farm.task_started(stranger, order["attempt"])  # not its attempt: dropped
    assert statuses(kit, job_id) == ["dispatched"]
    with pytest.raises(RpcError) as refused:
        kit.farm.task_finished(stranger, order["attempt"], 0, None)
    assert (refused.value.code, refused.value.reason) == (ErrorCode.CONFLICT, "stale_attempt")
    kit.farm.task_finished(holder, order["attempt"], 0, None)
    kit.farm.journal.flush()
    again = kit.farm.task_finished(holder, order["attempt"], 0, None)  # its reply was lost
    kit.farm.journal.flush()
    assert again.get(timeout=1) == {}
    assert statuses(kit, job_id) == ["completed"]


# -- retries and the blocklist -----------------------------------------------------------------
def test_a_failed_attempt_is_retried_until_its_attempts_run_out(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    job_id = kit.submit(frames="1", max_attempts=2, retry_delay_s=0)
    (order,) = kit.orders(worker)
    kit.finish(worker, order, exit_code=3)
    task = kit.farm.board.jobs[job_id].tasks[0]
    assert (task.status, task.attempts, task.error) == ("queued", 1, "exit code 3")
    (order,) = kit.orders(worker)
    kit.finish(worker, order, exit_code=3)
    assert (task.status, task.attempts) == ("failed", 2)
    assert kit.job(job_id).rec.status == "failed"
    assert kit.orders(worker) == []


def test_fail_fast_cancels_the_other_tasks_and_kills_running_ones(kit: FarmKit) -> None:
    one, two = kit.worker("w1"), kit.worker("w2")
    job_id = kit.submit(frames="1-3", max_attempts=1, fail_policy="fail_fast")
    kit.dispatch()
    (first,), (second,) = peer_of(one).take(), peer_of(two).take()
    kit.finish(one, first, exit_code=1)
    assert kit.job(job_id).rec.status == "failed"
    assert sorted(statuses(kit, job_id)) == ["canceled", "canceled", "failed"]
    assert peer_of(two).take("task.cancel") == [{"attempt": second["attempt"]}]


def test_three_failures_blocklist_a_worker_for_that_job_only(kit: FarmKit) -> None:
    bad = kit.worker("bad")
    job_id = kit.submit(frames="1-5", max_attempts=10, retry_delay_s=0)
    for _ in range(3):
        (order,) = kit.orders(bad)
        kit.finish(bad, order, exit_code=1)
    assert kit.farm.board.jobs[job_id].blocklist == {"bad": 3}
    assert kit.orders(bad) == []
    other = kit.submit(frames="1")
    assert [order["job_id"] for order in kit.orders(bad)] == [other]
    good = kit.worker("good")
    assert [order["job_id"] for order in kit.orders(good)] == [job_id]


# -- operators' verbs --------------------------------------------------------------------------
def test_cancel_kills_running_tasks_also_on_a_disabled_worker(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    job_id = kit.submit(frames="1-2")
    (order,) = kit.orders(worker)
    kit.registry.set_enabled(parse_selector("w1"), False)
    state = kit.farm.board.jobs[job_id]
    kit.farm.cancel(state)
    assert state.rec.status == "canceled"
    assert statuses(kit, job_id) == ["canceled", "canceled"]
    assert peer_of(worker).take("task.cancel") == [{"attempt": order["attempt"]}]
    with pytest.raises(RpcError) as refused:
        kit.farm.pause(state)
    assert refused.value.code == ErrorCode.CONFLICT


def test_pause_holds_dispatch_and_resume_lets_it_go(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    job_id = kit.submit(frames="1")
    state = kit.farm.board.jobs[job_id]
    kit.farm.pause(state)
    assert state.rec.status == "paused"
    assert kit.orders(worker) == []
    kit.farm.resume(state)
    assert state.rec.status == "queued"
    assert len(kit.orders(worker)) == 1


def test_requeue_and_requeue_task_give_fresh_attempts(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    job_id = kit.submit(frames="1-2", max_attempts=1, fail_policy="finish")
    state = kit.farm.board.jobs[job_id]
    with pytest.raises(RpcError) as refused:
        kit.farm.requeue_task(state.tasks[0].id)  # queued: nothing to requeue
    assert refused.value.reason == "bad_task_state"
    for _ in range(2):
        (order,) = kit.orders(worker)
        kit.finish(worker, order, exit_code=1)
    assert kit.job(job_id).rec.status == "failed"
    state = kit.farm.job_for_change(job_id)  # finished: loaded back from the database
    assert kit.farm.requeue(state) == 2
    assert [task.attempts for task in state.tasks] == [0, 0]
    assert state.rec.status == "queued"
    for _ in range(2):
        (order,) = kit.orders(worker)
        kit.finish(worker, order)
    assert kit.job(job_id).rec.status == "completed"
    task = kit.farm.requeue_task(state.tasks[1].id)
    state = kit.job(job_id)
    assert (task.status, state.rec.status) == ("queued", "active")


def test_set_priority_changes_which_job_goes_first(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    first = kit.submit(frames="1", priority=50)
    second = kit.submit(frames="1", priority=50)
    kit.farm.set_priority(kit.farm.board.jobs[second], 60)
    assert kit.farm.board.jobs[second].rec.priority == 60
    assert [order["job_id"] for order in kit.orders(worker)] == [second]
    assert kit.farm.board.jobs[first].tasks[0].status == "queued"


# -- workers lost, reconciled, recovered -------------------------------------------------------
def test_a_lost_worker_gives_its_tasks_back_without_counting_an_attempt(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    job_id = kit.submit(frames="1")
    kit.orders(worker)
    kit.lose(worker)
    task = kit.farm.board.jobs[job_id].tasks[0]
    assert (task.status, task.attempts, task.error) == ("queued", 0, "worker w1 lost")
    assert kit.farm.workers == {}


def test_a_worker_leaving_during_shutdown_keeps_its_tasks(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    job_id = kit.submit(frames="1")
    kit.orders(worker)
    kit.farm.begin_shutdown()
    kit.lose(worker, "master shutting down")
    assert statuses(kit, job_id) == ["dispatched"]


def test_a_worker_back_after_its_reconnect_backoff_keeps_the_task_it_held(kit: FarmKit) -> None:
    """Found in CI: with a short heartbeat the restarted master requeued a task whose worker was
    still sleeping between reconnects; the task ran again although its result was on the way."""
    worker = kit.worker("w1")
    job_id = kit.submit(frames="1")
    (order,) = kit.orders(worker)
    kit.restart()
    kit.clock.advance(HEARTBEAT_TIMEOUT_S + AGENT_RECONNECT_MAX_S - 0.1)
    assert kit.farm.run_once(kit.clock.mono()) == []
    kit.worker("w1", attempts=(order["attempt"],))
    assert statuses(kit, job_id) == ["dispatched"]


def test_the_recovery_grace_runs_from_when_the_master_starts_serving(kit: FarmKit) -> None:
    kit.worker("w1")
    kit.submit(frames="1")
    kit.dispatch()
    farm = kit.restart()
    kit.clock.advance(HEARTBEAT_TIMEOUT_S * 10)  # a long load
    farm.start()
    try:
        requeued = []
        for _ in range(int(RECOVERY_GRACE_S / 0.5) - 1):  # the housekeeping, running on time
            kit.clock.advance(0.5)
            requeued += farm.run_once(kit.clock.mono())
        assert requeued == []
        kit.clock.advance(0.6)
        assert len(farm.run_once(kit.clock.mono())) == 1
    finally:
        farm.stop()


def test_after_a_restart_held_attempts_stay_and_the_rest_are_requeued(kit: FarmKit) -> None:
    one, two = kit.worker("w1"), kit.worker("w2")
    job_id = kit.submit(frames="1-2")
    kit.dispatch()
    (kept,), (gone,) = peer_of(one).take(), peer_of(two).take()
    kit.restart()
    back = kit.worker("w1", attempts=(kept["attempt"], "99.1.abcdef"))
    assert peer_of(back).take("task.cancel") == [{"attempt": "99.1.abcdef"}]  # unknown: cancel
    tasks = {task.id: task for task in kit.farm.board.jobs[job_id].tasks}
    assert tasks[kept["task_id"]].status == TaskStatus.DISPATCHED
    kit.clock.advance(RECOVERY_GRACE_S - 0.1)
    kit.farm.run_once(kit.clock.mono())
    assert tasks[gone["task_id"]].status == TaskStatus.DISPATCHED  # w2 may still come back
    kit.clock.advance(0.2)
    assert kit.farm.run_once(kit.clock.mono()) == [gone["task_id"]]
    assert tasks[gone["task_id"]].status == TaskStatus.QUEUED
    assert tasks[gone["task_id"]].error == "worker w2 did not come back"
