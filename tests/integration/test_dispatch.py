"""Who gets what, and what their results do (docs/jobs.md, docs/states.md):
enabled and disabled workers, priority then age, tags, slots, dependencies, refused orders;
task.finished, output, progress and events; the failure policy and the blocklist.
Fake workers over real sockets against the real master.
"""

from __future__ import annotations

from collections.abc import Iterator

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
from tests.support import MasterProcess, RpcClient, wait_for

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def workers(master: MasterProcess) -> Iterator[list[FakeWorker]]:
    """Fake workers a test starts with `start(name, …)`; all closed at the end."""
    started: list[FakeWorker] = []
    yield started
    for fake in started:
        fake.close()


@pytest.fixture
def start(master: MasterProcess, workers: list[FakeWorker]):
    def start_worker(name: str, slots: int = 1, tags: tuple[str, ...] = ()) -> FakeWorker:
        fake = FakeWorker(master.port, name, slots=slots, tags=tags)
        workers.append(fake)
        return fake

    return start_worker


# -- who gets what -----------------------------------------------------------------------------
def test_a_disabled_worker_gets_nothing_and_its_running_task_finishes(
    api: RpcClient, start
) -> None:
    fake = start("render-01")
    job_id = submit(api, "d", frames="1-2")
    running = fake.take()
    fake.started(running["attempt"])
    assert api.call("clients.disable", select="render-01")["changed"] == ["render-01"]
    # What it runs already finishes normally …
    fake.complete(running)
    assert task_view(api, job_id, running["task_id"])["status"] == "completed"
    # … but it is given no new task.
    fake.expect_no_order(within=1.2)
    assert job_view(api, job_id)["tasks_by_status"]["queued"] == 1
    # Enabled again, it gets the rest.
    api.call("clients.enable", select="render-01")
    fake.complete(fake.take())
    wait_job(api, job_id, "completed")


def test_higher_priority_first_then_the_oldest_job(api: RpcClient, start) -> None:
    low = submit(api, "low", priority=10)
    old_high = submit(api, "old-high", priority=80)
    mid = submit(api, "mid")
    new_high = submit(api, "new-high", priority=80)
    fake = start("render-01")
    order = []
    for _ in range(4):
        task = fake.take()
        order.append(task["job_id"])
        fake.complete(task)
    assert order == [old_high, new_high, mid, low]


def test_set_priority_changes_the_order(api: RpcClient, start) -> None:
    first = submit(api, "first")
    second = submit(api, "second")
    api.call("jobs.set_priority", job_id=second, priority=90)
    fake = start("render-01")
    task = fake.take()
    assert task["job_id"] == second
    api.call("jobs.set_priority", job_id=second, priority=0)
    submit(api, "third", priority=0)
    fake.complete(task)
    assert fake.take()["job_id"] == first


def test_a_job_with_tags_goes_only_to_workers_with_all_of_them(api: RpcClient, start) -> None:
    plain = start("cpu-01", slots=2, tags=("linux",))
    job_id = submit(api, "gpu-job", frames="1-2", tags=["gpu", "linux"])
    plain.expect_no_order()
    assert job_view(api, job_id)["status"] == "queued"
    almost = start("gpu-mac", slots=2, tags=("gpu", "mac"))
    almost.expect_no_order()
    gpu = start("gpu-01", slots=2, tags=("gpu", "linux", "cuda"))
    tasks = [gpu.take(), gpu.take()]
    assert all(task["job_id"] == job_id for task in tasks)
    plain.expect_no_order(within=0.2)
    almost.expect_no_order(within=0.2)
    # Untagged jobs go to anyone.
    untagged = submit(api, "any")
    assert plain.take()["job_id"] == untagged


def test_a_worker_gets_as_many_tasks_as_it_has_slots(api: RpcClient, start) -> None:
    job_id = submit(api, "slots", frames="1-5")
    fake = start("render-01", slots=2)
    first, second = fake.take(), fake.take()
    fake.expect_no_order()
    view = job_view(api, job_id)
    assert view["tasks_by_status"]["dispatched"] == 2
    assert view["tasks_by_status"]["queued"] == 3
    # A slot freed is a slot filled.
    fake.complete(first)
    third = fake.take()
    fake.expect_no_order(within=0.3)
    fake.complete(second)
    fake.complete(third)
    fake.complete(fake.take())
    fake.complete(fake.take())
    wait_job(api, job_id, "completed")


def test_two_workers_share_a_job(api: RpcClient, start) -> None:
    one, two = start("render-01"), start("render-02")
    job_id = submit(api, "shared", frames="1-4")
    by_worker = {"render-01": [], "render-02": []}
    for _ in range(2):
        for fake in (one, two):
            task = fake.take()
            by_worker[fake.name].append(task["task_id"])
            fake.complete(task)
    assert len(by_worker["render-01"]) == len(by_worker["render-02"]) == 2
    done = wait_job(api, job_id, "completed")
    assert done["tasks_by_status"]["completed"] == 4
    workers = {task["id"]: task["worker"] for task in tasks_of(api, job_id)}
    assert {workers[i] for i in by_worker["render-01"]} == {"render-01"}
    assert {workers[i] for i in by_worker["render-02"]} == {"render-02"}


def test_a_dependent_job_waits_until_its_dependency_completed(api: RpcClient, start) -> None:
    first = submit(api, "A", frames="1-2")
    second = submit(api, "B", frames="1-2", depends_on=[first], priority=100)
    fake = start("render-01", slots=4)
    a1, a2 = fake.take(), fake.take()
    assert {a1["job_id"], a2["job_id"]} == {first}
    fake.expect_no_order()  # B has the higher priority but waits for A
    fake.complete(a1)
    fake.expect_no_order(within=0.3)
    assert job_view(api, second)["status"] == "queued"
    fake.complete(a2)
    wait_job(api, first, "completed")
    b1, b2 = fake.take(), fake.take()
    assert {b1["job_id"], b2["job_id"]} == {second}


def test_a_failed_dependency_keeps_the_dependent_job_waiting(api: RpcClient, start) -> None:
    first = submit(api, "A", max_attempts=1)
    second = submit(api, "B", depends_on=[first])
    fake = start("render-01", slots=2)
    task = fake.take()
    assert fake.finished(task["attempt"], exit_code=1)["result"] == {}
    wait_job(api, first, "failed")
    fake.expect_no_order()
    assert job_view(api, second)["status"] == "queued"
    api.call("jobs.requeue", job_id=first)  # the operator fixes A: B follows
    fake.complete(fake.take())
    wait_job(api, first, "completed")
    assert fake.take()["job_id"] == second


def test_cancel_reaches_a_disabled_worker(api: RpcClient, start) -> None:
    fake = start("render-01")
    job_id = submit(api, "kill-me")
    task = fake.take()
    api.call("clients.disable", select="render-01")
    api.call("jobs.cancel", job_id=job_id)
    assert fake.take_cancel()["attempt"] == task["attempt"]


def test_a_refused_order_is_requeued_without_counting_an_attempt(api: RpcClient, start) -> None:
    fake = start("render-01")
    job_id = submit(api, "busy")
    order = fake.next_order("task.run")
    fake.refuse(order, -32009, "no free slot", "no_free_slot")
    task_id = order["params"]["task_id"]
    again = fake.take()  # after a short cool-down it is offered again, as a new attempt
    assert again["task_id"] == task_id
    assert again["attempt"] != order["params"]["attempt"]
    assert again["attempt"].startswith(f"{task_id}.2.")
    assert task_view(api, job_id, task_id)["attempts"] == 0
    # The refused attempt is stale now.
    stale = fake.finished(order["params"]["attempt"], 0)
    assert stale["error"]["data"]["reason"] == "stale_attempt"
    fake.complete(again)
    done = wait_job(api, job_id, "completed")
    assert tasks_of(api, job_id)[0]["attempts"] == 0
    assert done["tasks_by_status"]["completed"] == 1


def test_a_refused_order_goes_to_another_worker(api: RpcClient, start) -> None:
    full = start("render-01")
    job_id = submit(api, "elsewhere")
    order = full.next_order("task.run")
    free = start("render-02")
    full.refuse(order, -32009, "no free slot", "no_free_slot")
    task = free.take()
    assert task["task_id"] == order["params"]["task_id"]
    free.complete(task)
    assert wait_job(api, job_id, "completed")


# -- results -----------------------------------------------------------------------------------
def test_a_task_finished_with_exit_0_completes_the_task_and_the_job(api: RpcClient, start) -> None:
    fake = start("render-01")
    job_id = submit(api, "ok", frames="1-2")
    first = fake.take()
    assert task_view(api, job_id, first["task_id"])["status"] == "dispatched"
    fake.started(first["attempt"])
    running = wait_task(api, job_id, first["task_id"], "running")
    assert running["worker"] == "render-01" and running["started"]
    assert fake.finished(first["attempt"], 0)["result"] == {}  # answered once stored
    done = task_view(api, job_id, first["task_id"])
    assert (done["status"], done["exit_code"], done["attempts"]) == ("completed", 0, 0)
    assert done["finished"]
    view = job_view(api, job_id)
    assert view["status"] == "active" and view["progress"] == 50
    fake.complete(fake.take())
    view = wait_job(api, job_id, "completed")
    assert view["progress"] == 100
    assert view["tasks_by_status"]["completed"] == 2


def test_task_output_is_in_the_task_log(api: RpcClient, start) -> None:
    fake = start("render-01")
    job_id = submit(api, "log")
    task = fake.take()
    fake.started(task["attempt"])
    fake.output(task["attempt"], "frame 1 of 1\n")
    fake.output(task["attempt"], "écrit ✓\n")
    log = wait_for(
        lambda: (
            (reply := api.call("tasks.log", task_id=task["task_id"]))["text"].endswith("écrit ✓\n")
            and reply
        ),
        what="the output in the log",
    )
    assert "frame 1 of 1\nécrit ✓\n" in log["text"]
    assert log["complete"] is False  # still running
    assert log["next_offset"] == len(log["text"].encode())
    # Read on from next_offset: nothing new yet.
    more = api.call("tasks.log", task_id=task["task_id"], offset=log["next_offset"])
    assert more["text"] == "" and more["next_offset"] == log["next_offset"]

    assert fake.finished(task["attempt"], 0)["result"] == {}
    wait_job(api, job_id, "completed")
    tail = api.call("tasks.log", task_id=task["task_id"], offset=log["next_offset"])
    assert tail["complete"] is True
    assert tail["next_offset"] > log["next_offset"]  # the master's closing line
    # Paging with a small limit walks the same bytes.
    text, offset = "", 0
    while True:
        page = api.call("tasks.log", task_id=task["task_id"], offset=offset, limit=7)
        text += page["text"]
        offset = page["next_offset"]
        if page["complete"]:
            break
    assert text == log["text"] + tail["text"]


def test_a_log_subscriber_gets_live_output(master: MasterProcess, api: RpcClient, start) -> None:
    fake = start("render-01")
    submit(api, "live")
    task = fake.take()
    with RpcClient(master.port) as watcher:
        topic = f"log:{task['task_id']}"
        assert watcher.call("subscribe", topics=[topic])["topics"] == [topic]
        fake.started(task["attempt"])
        fake.output(task["attempt"], "tile 1/4\n")
        event = watcher.wait_event(lambda e: "tile 1/4" in e["data"]["text"], timeout=5)
        assert event["topic"] == topic
        assert event["data"]["task_id"] == task["task_id"]
        fake.output(task["attempt"], "tile 2/4\n")
        assert watcher.wait_event(lambda e: e["data"]["text"] == "tile 2/4\n", timeout=5)


def test_jobs_and_tasks_subscribers_get_events(
    master: MasterProcess, api: RpcClient, start
) -> None:
    with RpcClient(master.port) as watcher:
        watcher.call("subscribe", topics=["jobs", "tasks"])
        job_id = submit(api, "watched")
        created = watcher.wait_event(lambda e: e["topic"] == "jobs" and e["data"]["id"] == job_id)
        assert created["data"]["status"] == "queued"
        fake = start("render-01")
        task = fake.take()
        watcher.wait_event(
            lambda e: (
                e["topic"] == "tasks"
                and e["data"]["id"] == task["task_id"]
                and e["data"]["status"] == "dispatched"
            )
        )
        fake.complete(task)
        done = watcher.wait_event(
            lambda e: (
                e["topic"] == "tasks"
                and e["data"]["id"] == task["task_id"]
                and e["data"]["status"] == "completed"
            )
        )
        assert done["data"]["worker"] == "render-01"
        watcher.wait_event(
            lambda e: (
                e["topic"] == "jobs"
                and e["data"]["id"] == job_id
                and e["data"]["status"] == "completed"
            )
        )


def test_task_progress_moves_the_job_progress(api: RpcClient, start) -> None:
    fake = start("render-01")
    job_id = submit(api, "progress", frames="1-2")
    task = fake.take()
    fake.started(task["attempt"])
    fake.progress(task["attempt"], 50.0)
    wait_for(lambda: job_view(api, job_id)["progress"] == 25, what="25% job progress")
    fake.progress(task["attempt"], 100.0)
    wait_for(lambda: job_view(api, job_id)["progress"] == 50, what="50% job progress")
    fake.complete(task)
    assert job_view(api, job_id)["progress"] == 50


# -- the failure policy ------------------------------------------------------------------------
def test_a_failed_attempt_is_retried_as_a_new_attempt_until_max_attempts(
    api: RpcClient, start
) -> None:
    fake = start("render-01")
    job_id = submit(api, "flaky", max_attempts=3, retry_delay_s=0)
    first = fake.take()
    assert fake.finished(first["attempt"], exit_code=1)["result"] == {}
    second = fake.take()
    assert second["task_id"] == first["task_id"]
    assert second["attempt"] != first["attempt"]
    assert task_view(api, job_id, first["task_id"])["attempts"] == 1
    assert fake.finished(second["attempt"], exit_code=None, error="crashed")["result"] == {}
    third = fake.take()
    assert third["attempt"] not in (first["attempt"], second["attempt"])
    retried = task_view(api, job_id, first["task_id"])
    assert (retried["status"], retried["attempts"]) == ("dispatched", 2)
    fake.complete(third)
    done = wait_job(api, job_id, "completed")
    assert task_view(api, job_id, first["task_id"])["attempts"] == 2
    assert done["tasks_by_status"]["completed"] == 1


def test_out_of_attempts_fails_the_job_and_cancels_its_other_tasks(api: RpcClient, start) -> None:
    fake = start("render-01", slots=2)
    job_id = submit(api, "doomed", frames="1-4", max_attempts=2, retry_delay_s=0)
    first, other = fake.take(), fake.take()
    fake.started(other["attempt"])
    assert fake.finished(first["attempt"], exit_code=1)["result"] == {}
    retry = fake.take()
    assert retry["task_id"] == first["task_id"]
    assert fake.finished(retry["attempt"], exit_code=1)["result"] == {}
    view = wait_job(api, job_id, "failed")
    counts = view["tasks_by_status"]
    assert (counts["failed"], counts["canceled"], counts["queued"]) == (1, 3, 0)
    failed = task_view(api, job_id, first["task_id"])
    assert (failed["status"], failed["attempts"], failed["exit_code"]) == ("failed", 2, 1)
    # fail_fast: the task still running elsewhere in the job is killed.
    assert fake.take_cancel()["attempt"] == other["attempt"]
    assert task_view(api, job_id, other["task_id"])["status"] == "canceled"
    fake.expect_no_order()


def test_fail_policy_finish_keeps_going_and_ends_failed(api: RpcClient, start) -> None:
    fake = start("render-01")
    job_id = submit(api, "finish", frames="1-3", max_attempts=1, fail_policy="finish")
    first = fake.take()
    assert fake.finished(first["attempt"], exit_code=1)["result"] == {}
    wait_task(api, job_id, first["task_id"], "failed")
    assert job_view(api, job_id)["status"] == "active"
    fake.complete(fake.take())
    fake.complete(fake.take())
    view = wait_job(api, job_id, "failed")
    assert view["tasks_by_status"]["completed"] == 2
    assert view["tasks_by_status"]["failed"] == 1


def test_a_worker_failing_three_tasks_of_a_job_is_blocklisted_for_it(api: RpcClient, start) -> None:
    bad = start("bad-01")
    job_id = submit(api, "blocklist", frames="1-4", max_attempts=10, retry_delay_s=0)
    for _ in range(3):
        task = bad.take()
        assert bad.finished(task["attempt"], exit_code=1, error="no licence")["result"] == {}
    bad.expect_no_order()
    assert job_view(api, job_id)["tasks_by_status"]["queued"] == 4
    # Another job still goes to it.
    other = submit(api, "other")
    task = bad.take()
    assert task["job_id"] == other
    bad.complete(task)
    # Another worker gets the blocklisted job's tasks; the bad one still gets none.
    good = start("good-01")
    task = good.take()
    assert task["job_id"] == job_id
    bad.expect_no_order(within=0.3)
    good.complete(task)
    second = good.take()
    assert second["job_id"] == job_id
    bad.expect_no_order(within=0.3)
    good.close()  # leaves: its task goes back to the queue, still not to bad-01
    wait_for(lambda: job_view(api, job_id)["tasks_by_status"]["queued"] == 3)
    bad.expect_no_order(within=0.3)
    # jobs.requeue clears the job's blocklist: its tasks reach bad-01 again.
    api.call("jobs.cancel", job_id=job_id)
    api.call("jobs.requeue", job_id=job_id)
    assert bad.take()["job_id"] == job_id
