"""Jobs and tasks as the operator sees them (docs/jobs.md, docs/states.md):
jobs.submit and its validation, the job and task views, the operator's actions with their
allowed transitions, and the console commands over them. Workers are fake workers over real
sockets; the master is the real program.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.fakeworker import (
    FakeWorker,
    error_of,
    job_view,
    submit,
    task_view,
    tasks_of,
    wait_job,
    wait_task,
)
from tests.support import ConsoleClient, MasterProcess, RpcClient, wait_for

pytestmark = pytest.mark.timeout(30)

JOB_VIEW_FIELDS = {
    "id",
    "name",
    "status",
    "priority",
    "tags",
    "created",
    "updated",
    "tasks_total",
    "tasks_by_status",
    "progress",
}
TASK_VIEW_FIELDS = {
    "id",
    "job_id",
    "index",
    "frames",
    "status",
    "worker",
    "attempts",
    "exit_code",
    "started",
    "finished",
}
TASK_STATUSES = {"queued", "dispatched", "running", "completed", "failed", "canceled"}
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture
def worker(master: MasterProcess) -> Iterator[FakeWorker]:
    fake = FakeWorker(master.port, "render-01", slots=1)
    yield fake
    fake.close()


# -- jobs.submit -----------------------------------------------------------------------------
def test_a_frame_range_is_split_into_tasks_of_chunk_frames(api: RpcClient) -> None:
    result = api.call("jobs.submit", name="shot", argv=["r", "{frames}"], frames="1-250", chunk=10)
    assert result["tasks"] == 25
    tasks = tasks_of(api, result["job_id"])
    assert [task["frames"] for task in tasks] == [f"{i}-{i + 9}" for i in range(1, 251, 10)]
    assert [task["index"] for task in tasks] == list(range(25))
    assert {task["status"] for task in tasks} == {"queued"}


def test_tasks_never_span_a_gap_in_the_frames(api: RpcClient) -> None:
    result = api.call(
        "jobs.submit", name="gaps", argv=["r", "{frame}"], frames="1-10,20,30-40", chunk=5
    )
    frames = [task["frames"] for task in tasks_of(api, result["job_id"])]
    assert frames == ["1-5", "6-10", "20", "30-34", "35-39", "40"]
    assert result["tasks"] == 6


def test_a_job_without_frames_is_one_task(api: RpcClient) -> None:
    result = api.call("jobs.submit", name="once", argv=["backup", "--job", "{job}"])
    assert result["tasks"] == 1
    [task] = tasks_of(api, result["job_id"])
    assert task["frames"] == ""
    assert job_view(api, result["job_id"])["tasks_total"] == 1


def test_placeholders_are_expanded_per_task_in_task_run(
    master: MasterProcess, api: RpcClient
) -> None:
    argv = ["render", "-f", "{frame}", "-s", "{start}", "-e", "{end}", "{frames}", "t{task}"]
    job_id = submit(api, "ph", argv=[*argv, "j{job}", "{{literal}}"], frames="1-5", chunk=2)
    with FakeWorker(master.port, "render-01", slots=3) as fake:
        orders = sorted((fake.take() for _ in range(3)), key=lambda order: order["task_id"])
    assert [order["argv"] for order in orders] == [
        ["render", "-f", "1", "-s", "1", "-e", "2", "1-2", "t0", f"j{job_id}", "{literal}"],
        ["render", "-f", "3", "-s", "3", "-e", "4", "3-4", "t1", f"j{job_id}", "{literal}"],
        ["render", "-f", "5", "-s", "5", "-e", "5", "5-5", "t2", f"j{job_id}", "{literal}"],
    ]
    task_ids = [task["id"] for task in tasks_of(api, job_id)]
    assert [order["task_id"] for order in orders] == task_ids
    assert {order["job_id"] for order in orders} == {job_id}
    for order in orders:
        assert order["attempt"].startswith(f"{order['task_id']}.1.")
        assert {"env", "cwd", "timeout_s"} <= set(order)


BAD_SUBMISSIONS = [
    pytest.param({"argv": []}, "bad_argv", id="empty argv"),
    pytest.param({"argv": ["render", 7]}, "bad_argv", id="non-string argv"),
    pytest.param({"argv": "render -f 1"}, "bad_argv", id="argv not a list"),
    pytest.param({"frames": "1-x"}, "bad_frames", id="bad frame spec"),
    pytest.param({"frames": "10-1"}, "bad_frames", id="backwards frames"),
    pytest.param({"frames": "1-10", "chunk": 0}, "out_of_range", id="chunk below 1"),
    pytest.param({"priority": 101}, "out_of_range", id="priority 101"),
    pytest.param({"argv": ["r", "{frame}", "{shot}"]}, "bad_placeholder", id="unknown placeholder"),
    pytest.param(
        {"argv": ["r", "{frame}"], "frames": None}, "bad_placeholder", id="frame no frames"
    ),
    pytest.param({"progress_regex": "([0-9]+"}, "bad_regex", id="bad progress_regex"),
    pytest.param({"env": {"THREADS": 4}}, "bad_env", id="env value not a string"),
    pytest.param({"env": ["A=1"]}, "bad_param", id="env not an object"),
    pytest.param({"fail_policy": "sometimes"}, "bad_policy", id="unknown fail_policy"),
    pytest.param({"name": "  "}, "bad_name", id="blank name"),
    pytest.param({"argv": None}, "missing_param", id="no argv"),
    pytest.param({"colour": "red"}, "unknown_param", id="unknown parameter"),
]


@pytest.mark.parametrize(("change", "reason"), BAD_SUBMISSIONS)
def test_a_bad_submission_is_refused_with_a_clear_reason(
    api: RpcClient, change: dict, reason: str
) -> None:
    params = {"name": "bad", "argv": ["r", "{frame}"], "frames": "1-10", **change}
    params = {key: value for key, value in params.items() if value is not None}
    failure = error_of(api, "jobs.submit", **params)
    assert failure.code == -32602
    assert failure.reason == reason
    assert failure.error["message"]
    assert api.call("jobs.list")["total"] == 0  # nothing was stored


def test_depends_on_an_unknown_job_is_not_found(api: RpcClient) -> None:
    failure = error_of(api, "jobs.submit", name="b", argv=["r"], depends_on=[42])
    assert (failure.code, failure.reason) == (-32004, "no_such_job")
    assert "42" in failure.error["message"]


def test_too_many_tasks_are_refused(api: RpcClient) -> None:
    failure = error_of(api, "jobs.submit", name="huge", argv=["r"], frames="1-200000", chunk=1)
    assert (failure.code, failure.reason) == (-32602, "too_many_tasks")
    assert "200000" in failure.error["message"]
    # The same frames in bigger chunks are fine.
    assert api.call("jobs.submit", name="ok", argv=["r"], frames="1-200000", chunk=2)["tasks"] == (
        100_000
    )


def test_the_submit_reply_comes_only_once_the_job_is_stored(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    first = MasterProcess(data_dir, "--heartbeat-s", "0.5")
    try:
        with RpcClient(first.port) as api:
            result = api.call("jobs.submit", name="keep", argv=["r", "{frame}"], frames="1-30")
    finally:
        first.kill()  # kill -9 right after the reply: no clean shutdown to save us
    second = MasterProcess(data_dir, "--heartbeat-s", "0.5")
    try:
        with RpcClient(second.port) as api:
            view = job_view(api, result["job_id"])
            assert (view["name"], view["status"], view["tasks_total"]) == ("keep", "queued", 30)
            tasks = tasks_of(api, result["job_id"])
            assert [task["frames"] for task in tasks] == [str(i) for i in range(1, 31)]
            # New ids do not collide with the stored ones.
            again = api.call("jobs.submit", name="next", argv=["r"])
            assert again["job_id"] > result["job_id"]
            assert tasks_of(api, again["job_id"])[0]["id"] > tasks[-1]["id"]
    finally:
        second.stop()


# -- views -------------------------------------------------------------------------------------
def test_jobs_get_shows_the_job_view(api: RpcClient) -> None:
    job_id = submit(api, "shot-010", frames="1-20", chunk=5, priority=70, tags=["gpu"])
    view = job_view(api, job_id)
    assert set(view) >= JOB_VIEW_FIELDS
    assert view["id"] == job_id
    assert (view["name"], view["status"], view["priority"]) == ("shot-010", "queued", 70)
    assert view["tags"] == ["gpu"]
    assert ISO_UTC.fullmatch(view["created"]) and ISO_UTC.fullmatch(view["updated"])
    assert view["tasks_total"] == 4
    assert set(view["tasks_by_status"]) == TASK_STATUSES
    assert view["tasks_by_status"]["queued"] == 4
    assert sum(view["tasks_by_status"].values()) == 4
    assert view["progress"] == 0


def test_jobs_list_is_newest_first_filtered_and_paged(api: RpcClient) -> None:
    ids = [submit(api, f"job-{i}") for i in range(5)]
    api.call("jobs.pause", job_id=ids[1])
    api.call("jobs.pause", job_id=ids[3])
    listing = api.call("jobs.list")
    assert [job["id"] for job in listing["jobs"]] == ids[::-1]
    assert listing["total"] == 5
    assert all(set(job) >= JOB_VIEW_FIELDS for job in listing["jobs"])
    page = api.call("jobs.list", limit=2, offset=1)
    assert [job["id"] for job in page["jobs"]] == [ids[3], ids[2]]
    assert page["total"] == 5
    paused = api.call("jobs.list", status="paused")
    assert [job["id"] for job in paused["jobs"]] == [ids[3], ids[1]]
    assert paused["total"] == 2
    assert api.call("jobs.list", status="completed") == {"jobs": [], "total": 0}
    assert error_of(api, "jobs.list", status="sleeping").code == -32602


def test_tasks_list_shows_the_task_views(api: RpcClient) -> None:
    job_id = submit(api, "t", frames="1-3")
    tasks = tasks_of(api, job_id)
    assert len(tasks) == 3
    for index, task in enumerate(tasks):
        assert set(task) >= TASK_VIEW_FIELDS
        assert (task["job_id"], task["index"], task["frames"]) == (job_id, index, str(index + 1))
        assert (task["status"], task["worker"], task["attempts"]) == ("queued", None, 0)
        assert task["exit_code"] is None and task["started"] is None and task["finished"] is None


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("jobs.get", {"job_id": 99}),
        ("tasks.list", {"job_id": 99}),
        ("jobs.cancel", {"job_id": 99}),
        ("jobs.pause", {"job_id": 99}),
        ("jobs.resume", {"job_id": 99}),
        ("jobs.requeue", {"job_id": 99}),
        ("jobs.set_priority", {"job_id": 99, "priority": 10}),
        ("tasks.log", {"task_id": 99}),
        ("tasks.requeue", {"task_id": 99}),
    ],
)
def test_an_unknown_job_or_task_is_not_found(api: RpcClient, method: str, params: dict) -> None:
    failure = error_of(api, method, **params)
    assert failure.code == -32004
    assert failure.reason in ("no_such_job", "no_such_task")


# -- operator actions --------------------------------------------------------------------------
def test_pause_stops_dispatch_running_tasks_finish_and_resume_dispatches_again(
    api: RpcClient, worker: FakeWorker
) -> None:
    job_id = submit(api, "p", frames="1-3")
    first = worker.take()
    assert api.call("jobs.pause", job_id=job_id)["status"] == "paused"
    worker.complete(first)
    assert task_view(api, job_id, first["task_id"])["status"] == "completed"
    worker.expect_no_order(within=1.2)  # longer than the dispatcher's safety tick
    view = job_view(api, job_id)
    assert view["status"] == "paused"
    assert view["tasks_by_status"]["queued"] == 2
    resumed = api.call("jobs.resume", job_id=job_id)
    assert resumed["status"] == "active"
    worker.complete(worker.take())
    worker.complete(worker.take())
    wait_job(api, job_id, "completed")


def test_cancel_kills_running_attempts_and_cancels_queued_tasks(
    api: RpcClient, worker: FakeWorker
) -> None:
    job_id = submit(api, "c", frames="1-3")
    running = worker.take()
    worker.started(running["attempt"])
    wait_task(api, job_id, running["task_id"], "running")
    view = api.call("jobs.cancel", job_id=job_id)
    assert view["status"] == "canceled"
    assert view["tasks_by_status"]["canceled"] == 3
    assert worker.take_cancel() == {"attempt": running["attempt"]}
    assert {task["status"] for task in tasks_of(api, job_id)} == {"canceled"}
    # The killed attempt's late report is stale and changes nothing.
    late = worker.finished(running["attempt"], exit_code=-15)
    assert late["error"]["code"] == -32009
    assert late["error"]["data"]["reason"] == "stale_attempt"
    assert task_view(api, job_id, running["task_id"])["status"] == "canceled"
    worker.expect_no_order()


def test_requeue_puts_failed_and_canceled_tasks_back_with_attempts_reset(
    api: RpcClient, worker: FakeWorker
) -> None:
    job_id = submit(api, "r", frames="1-3", max_attempts=1)
    order = worker.take()
    worker.started(order["attempt"])
    assert worker.finished(order["attempt"], exit_code=1)["result"] == {}
    failed = wait_job(api, job_id, "failed")  # fail_fast: the rest is canceled
    assert failed["tasks_by_status"] == {**failed["tasks_by_status"], "failed": 1, "canceled": 2}
    assert task_view(api, job_id, order["task_id"])["attempts"] == 1

    requeued = api.call("jobs.requeue", job_id=job_id)
    assert requeued["status"] in ("queued", "active")
    task = task_view(api, job_id, order["task_id"])
    assert task["attempts"] == 0 and task["exit_code"] is None
    for _ in range(3):
        again = worker.take()
        assert again["attempt"] != order["attempt"]
        worker.complete(again)
    assert wait_job(api, job_id, "completed")["progress"] == 100


def test_tasks_requeue_runs_a_completed_task_again(api: RpcClient, worker: FakeWorker) -> None:
    job_id = submit(api, "again", frames="1-2")
    first = worker.take()
    worker.complete(first)
    worker.complete(worker.take())
    wait_job(api, job_id, "completed")

    view = api.call("tasks.requeue", task_id=first["task_id"])
    assert (view["status"], view["attempts"], view["exit_code"]) == ("queued", 0, None)
    assert job_view(api, job_id)["status"] != "completed"
    rerun = worker.take()
    assert rerun["task_id"] == first["task_id"]
    assert rerun["attempt"] != first["attempt"]
    worker.complete(rerun)
    done = wait_job(api, job_id, "completed")
    assert done["tasks_by_status"]["completed"] == 2


def test_invalid_transitions_are_conflicts_naming_the_state(
    api: RpcClient, worker: FakeWorker
) -> None:
    queued = submit(api, "queued-job", tags=["nobody-has-this"])
    failure = error_of(api, "jobs.resume", job_id=queued)
    assert (failure.code, failure.reason) == (-32009, "bad_job_state")
    assert "queued" in failure.error["message"]
    failure = error_of(api, "jobs.requeue", job_id=queued)
    assert failure.code == -32009 and failure.reason
    [task] = tasks_of(api, queued)
    failure = error_of(api, "tasks.requeue", task_id=task["id"])
    assert failure.code == -32009 and "queued" in failure.error["message"]

    done = submit(api, "done-job")
    worker.complete(worker.take())
    wait_job(api, done, "completed")
    for action in ("jobs.cancel", "jobs.pause", "jobs.resume"):
        failure = error_of(api, action, job_id=done)
        assert (failure.code, failure.reason) == (-32009, "bad_job_state"), action
        assert "completed" in failure.error["message"]
    failure = error_of(api, "jobs.requeue", job_id=done)  # nothing failed or canceled
    assert failure.code == -32009 and failure.reason
    assert job_view(api, done)["status"] == "completed"

    api.call("jobs.cancel", job_id=queued)
    failure = error_of(api, "jobs.cancel", job_id=queued)
    assert (failure.code, failure.reason) == (-32009, "bad_job_state")
    assert "canceled" in failure.error["message"]


def test_requeue_of_a_paused_job_stays_paused(api: RpcClient, worker: FakeWorker) -> None:
    job_id = submit(api, "pp", frames="1-2", max_attempts=1, fail_policy="finish")
    order = worker.take()
    api.call("jobs.pause", job_id=job_id)
    assert worker.finished(order["attempt"], exit_code=3)["result"] == {}
    wait_task(api, job_id, order["task_id"], "failed")
    assert api.call("jobs.requeue", job_id=job_id)["status"] == "paused"
    worker.expect_no_order()
    api.call("jobs.resume", job_id=job_id)
    worker.complete(worker.take())
    worker.complete(worker.take())
    wait_job(api, job_id, "completed")


def test_set_priority_changes_the_view(api: RpcClient) -> None:
    job_id = submit(api, "prio")
    assert api.call("jobs.set_priority", job_id=job_id, priority=90)["priority"] == 90
    assert job_view(api, job_id)["priority"] == 90
    failure = error_of(api, "jobs.set_priority", job_id=job_id, priority=101)
    assert failure.code == -32602


# -- the console -------------------------------------------------------------------------------
@pytest.fixture
def console(master: MasterProcess) -> Iterator[ConsoleClient]:
    with ConsoleClient(master.port) as session:
        yield session


def test_console_submit_jobs_job_and_tasks(console: ConsoleClient, api: RpcClient) -> None:
    assert console.command("submit shot frames=1-10 chunk=5 -- echo {frame}") == (
        "submitted job 1 with 2 tasks"
    )
    assert tasks_of(api, 1)[1]["frames"] == "6-10"
    assert job_view(api, 1)["argv"] == ["echo", "{frame}"]

    jobs = console.command("jobs").splitlines()
    assert "progress" in jobs[0].lower()
    row = next(line for line in jobs if "shot" in line)
    assert re.search(r"\[-{20}\]\s+0\.0%", row)
    assert "queued" in row and "0/2" in row

    job = console.command("job 1")
    assert "job 1: shot" in job
    assert "queued" in job and "echo {frame}" in job and "1-10 (chunk 5)" in job

    tasks = console.command("tasks 1").splitlines()
    assert "status" in tasks[0].lower()
    assert any("1-5" in line and "queued" in line for line in tasks)
    assert any("6-10" in line and "queued" in line for line in tasks)
    assert tasks[-1] == "2 tasks"


def test_console_operator_actions(console: ConsoleClient, api: RpcClient) -> None:
    job_id = submit(api, "ops", frames="1-2", tags=["nobody-has-this"])
    assert console.command(f"pause {job_id}") == f"job {job_id} (ops) is now paused"
    assert console.command(f"resume {job_id}") == f"job {job_id} (ops) is now queued"
    assert console.command(f"priority {job_id} 80") == f"job {job_id} priority is now 80"
    assert job_view(api, job_id)["priority"] == 80
    assert console.command(f"cancel {job_id}") == f"job {job_id} (ops) is now canceled"
    assert console.command(f"requeue {job_id}") == f"job {job_id} (ops) is now queued"
    assert job_view(api, job_id)["tasks_by_status"]["queued"] == 2


def test_console_log_shows_the_task_output(
    console: ConsoleClient, api: RpcClient, worker: FakeWorker
) -> None:
    submit(api, "logged")
    order = worker.take()
    worker.complete(order, output="rendering frame 1\nsaved frame 1\n")
    wait_for(lambda: "saved frame 1" in console.command(f"log {order['task_id']}"), timeout=5)
    lines = console.command(f"log {order['task_id']}").splitlines()
    assert "rendering frame 1" in lines
    assert console.command(f"log {order['task_id']} 1").count("\n") == 0
    row = next(line for line in console.command("jobs").splitlines() if "logged" in line)
    assert re.search(r"\[#{20}\]\s+100\.0%", row) and "completed" in row and "1/1" in row


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("job 99", "no job 99"),
        ("tasks 99", "no job 99"),
        ("log 99", "no task 99"),
        ("cancel 99", "no job 99"),
        ("submit shot -- echo {bogus}", "bogus"),
        ("submit shot frames=1-x -- echo", "1-x"),
        ("submit shot chunk=many -- echo", "chunk"),
        ("submit shot frames=1-3", "usage"),
        ("priority 1", "usage"),
        ("pause", "usage"),
    ],
)
def test_console_errors_are_one_line(console: ConsoleClient, line: str, fragment: str) -> None:
    reply = console.command(line)
    assert reply.startswith("error: ") or reply.startswith("usage"), reply
    assert "\n" not in reply
    assert fragment in reply


def test_console_resume_of_a_queued_job_is_a_one_line_error(
    console: ConsoleClient, api: RpcClient
) -> None:
    job_id = submit(api, "q")
    reply = console.command(f"resume {job_id}")
    assert reply.startswith("error: ") and "\n" not in reply
    assert "queued" in reply
    assert console.command(f"job {job_id} --json").startswith("{")
