"""Why a task ended (`reason` and its human `error` line), how long it has run (`elapsed_s`), the
attempts it made, and a job's elapsed time, ETA, average task time and throughput: the job farm
in process with the fake clock (FarmKit), the console and API through MasterKit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from farmhand.master.jobs import history
from farmhand.master.jobs.outcomes import Reason, describe, reported_reason
from farmhand.master.jobs.templates import FFMPEG_PROGRESS
from farmhand.master.jobs.views import job_view, task_view
from models.jobstore import JobStore
from protocol.progress import ProgressParser
from tests.unit.farmkit import FarmKit, MasterKit

pytestmark = [pytest.mark.fast, pytest.mark.timeout(30)]


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[FarmKit]:
    farm_kit = FarmKit(tmp_path)
    yield farm_kit
    farm_kit.close()


def run_one(kit: FarmKit, **submit: object) -> tuple[int, str]:
    """Submit a one-task job, dispatch it to w1 and start it: (job id, attempt)."""
    worker = kit.registry.get("w1") or kit.worker("w1")
    job_id = kit.submit(frames="1", **submit)
    (order,) = kit.orders(worker)
    kit.farm.task_started(worker, order["attempt"])
    return job_id, order["attempt"]


def ended(kit: FarmKit, job_id: int, exit_code: int | None, error: str | None, reason=None):
    """The task after its worker's task.finished, and the `ended:` line of its log."""
    worker = kit.registry.get("w1")
    assert worker is not None
    task = kit.farm.board.jobs[job_id].tasks[0]
    attempt = task.attempt
    assert attempt is not None
    kit.farm.task_finished(worker, attempt, exit_code, error, reason)
    kit.farm.journal.flush()
    log = kit.farm.logs.read(task, 0, None)["text"]
    line = [text for text in log.splitlines() if " ended: " in text][-1]
    return task, line


@pytest.mark.parametrize(
    ("exit_code", "error", "reason", "words"),
    [
        (1, None, "exit", "exit code 1"),
        (-9, None, "signal", "killed by signal 9 (SIGKILL)"),
        (-15, "timeout after 3s", "timeout", "timed out after 3 s (its timeout_s)"),
        (
            None,
            "cannot start: No such file or directory: /no/such/binary",
            "cannot-start",
            "cannot start: No such file or directory: /no/such/binary",
        ),
    ],
)
def test_each_reason_a_worker_reports_gets_its_human_line(
    kit: FarmKit, exit_code: int | None, error: str | None, reason: str, words: str
) -> None:
    job_id, _ = run_one(kit, timeout_s=3, max_attempts=1)
    task, line = ended(kit, job_id, exit_code, error, reason)
    view = task_view(task, kit.clock.wall())
    assert (view["status"], view["reason"], view["error"]) == ("failed", reason, words)
    assert f"ended: {words}" in line and "None" not in line
    # Stored, and loaded again after a restart (migration 9's column).
    (stored,) = JobStore(kit.store).load_tasks()
    assert (stored.reason, stored.error) == (reason, words)
    kit.restart()
    assert history.find_task(kit.farm, task.id).reason == reason  # memory or stored


def test_an_attempt_without_an_exit_code_never_reads_exit_code_none(kit: FarmKit) -> None:
    """An older worker's report (no `reason`) that could not start, or gave nothing at all."""
    job_id, _ = run_one(kit, max_attempts=1)
    task, line = ended(kit, job_id, None, "cannot start: Permission denied: /etc/passwd")
    assert (task.reason, task.error) == (
        "cannot-start",
        "cannot start: Permission denied: /etc/passwd",
    )
    assert "exit code None" not in line
    second, _ = run_one(kit, max_attempts=1)
    task, line = ended(kit, second, None, None)
    assert "None" not in (task.error or "") and "None" not in line
    assert (task.reason, task.error) == ("exit", "ended without an exit code")


def test_an_older_workers_report_is_read_from_its_exit_code_and_error() -> None:
    assert reported_reason(0, None, None) is None
    assert reported_reason(2, None, None) is Reason.EXIT
    assert reported_reason(-11, None, None) is Reason.SIGNAL
    assert reported_reason(-15, "timeout after 1s", None) is Reason.TIMEOUT
    assert reported_reason(None, "cannot start: x", None) is Reason.CANNOT_START
    assert reported_reason(0, "timeout after 1s", "timeout") is Reason.TIMEOUT  # exit 0 on TERM
    assert describe(Reason.SIGNAL, -11, None, None) == "killed by signal 11 (SIGSEGV)"
    assert describe(Reason.TIMEOUT, -15, "timeout after 2s", None) == "timeout after 2s"


def test_a_lost_worker_and_a_cancel_give_their_reasons(kit: FarmKit) -> None:
    job_id, _ = run_one(kit)
    kit.lose(kit.registry.get("w1"))  # type: ignore[arg-type]
    task = kit.farm.board.jobs[job_id].tasks[0]
    assert (task.status, task.reason, task.error) == ("queued", "lost", "worker w1 lost")
    assert task.attempts == 0  # a lost worker costs no attempt
    worker = kit.worker("w1")
    (order,) = kit.orders(worker)
    assert kit.farm.board.tasks[task.id].reason is None  # a new attempt: nothing ended yet
    kit.farm.task_started(worker, order["attempt"])
    kit.farm.cancel(kit.farm.board.jobs[job_id])
    assert (task.status, task.reason, task.error) == ("canceled", "canceled", "job canceled")


def test_a_retried_task_keeps_why_its_last_attempt_failed_until_the_next_runs(
    kit: FarmKit,
) -> None:
    job_id, _ = run_one(kit, max_attempts=3, retry_delay_s=0)
    task, _ = ended(kit, job_id, -9, None, "signal")
    view = task_view(task, kit.clock.wall())
    assert (view["status"], view["reason"], view["attempts"]) == ("queued", "signal", 1)
    assert view["attempts_made"] == 1


def test_elapsed_runs_with_the_clock_then_is_the_run_time(kit: FarmKit) -> None:
    job_id, _ = run_one(kit)
    task = kit.farm.board.jobs[job_id].tasks[0]
    kit.clock.advance(4.5)
    view = task_view(task, kit.clock.wall())
    assert (view["status"], view["elapsed_s"], view["duration_s"]) == ("running", 4.5, None)
    assert view["attempts_made"] == 1
    ended(kit, job_id, 0, None)
    kit.clock.advance(100.0)  # long after: the elapsed time stays the run time
    view = task_view(task, kit.clock.wall())
    assert (view["elapsed_s"], view["duration_s"], view["reason"]) == (4.5, 4.5, None)


def test_attempts_made_counts_the_one_that_ran(kit: FarmKit) -> None:
    """A task that ran once shows 1 (it showed 0: `attempts` counts failed attempts only)."""
    job_id, _ = run_one(kit, max_attempts=2, retry_delay_s=0)
    task = kit.farm.board.jobs[job_id].tasks[0]
    ended(kit, job_id, 0, None)
    assert (task.attempts, task_view(task, kit.clock.wall())["attempts_made"]) == (0, 1)
    failing, _ = run_one(kit, max_attempts=2, retry_delay_s=0)
    ended(kit, failing, 1, None)
    again = kit.farm.board.jobs[failing].tasks[0]
    (order,) = kit.orders(kit.registry.get("w1"))  # type: ignore[arg-type]
    kit.farm.task_started(kit.registry.get("w1"), order["attempt"])  # type: ignore[arg-type]
    assert task_view(again, kit.clock.wall())["attempts_made"] == 2
    ended(kit, failing, 1, None)
    assert (again.status, task_view(again, kit.clock.wall())["attempts_made"]) == ("failed", 2)


def test_eta_from_completed_tasks_and_running_progress(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    job_id = kit.submit(frames="1-4")
    state = kit.farm.board.jobs[job_id]
    view = job_view(state, kit.clock.wall())
    assert (view["elapsed_s"], view["eta_s"], view["avg_task_s"]) == (None, None, None)
    (order,) = kit.orders(worker)
    kit.farm.task_started(worker, order["attempt"])
    kit.clock.advance(10.0)
    assert job_view(state, kit.clock.wall())["eta_s"] is None  # no pace known yet
    kit.farm.task_progress(worker, order["attempt"], 25.0)
    view = job_view(state, kit.clock.wall())
    # 10 s for 25%: 40 s a task; 30 s left of this one, then 3 queued at 40 s, one slot.
    assert (view["avg_task_s"], view["eta_s"], view["elapsed_s"]) == (40.0, 150.0, 10.0)
    kit.clock.advance(10.0)
    kit.finish(worker, order)  # 20 s: the pace from now on
    (second,) = kit.orders(worker)
    kit.farm.task_started(worker, second["attempt"])
    kit.clock.advance(5.0)
    view = job_view(state, kit.clock.wall())
    # 15 s left of the running task (20 s average), then 2 queued at 20 s.
    assert (view["avg_task_s"], view["eta_s"], view["elapsed_s"]) == (20.0, 55.0, 25.0)
    assert view["tasks_per_minute"] == 2.4  # 1 task in 25 s
    kit.farm.task_progress(worker, second["attempt"], 50.0)  # its own pace: 5 s more
    assert job_view(state, kit.clock.wall())["eta_s"] == 45.0
    kit.farm.pause(state)
    assert job_view(state, kit.clock.wall())["eta_s"] is None


def test_a_finished_job_keeps_its_elapsed_time_and_a_requeue_gives_time_back(
    kit: FarmKit,
) -> None:
    worker = kit.worker("w1")
    job_id = kit.submit(frames="1")
    (order,) = kit.orders(worker)
    kit.farm.task_started(worker, order["attempt"])
    kit.clock.advance(8.0)
    kit.finish(worker, order)
    kit.clock.advance(60.0)
    # A finished job leaves memory: jobs.get rebuilds it from its stored tasks, same figures.
    state = history.view_job(kit.farm, job_id)
    view = job_view(state, kit.clock.wall())
    assert (view["status"], view["elapsed_s"], view["eta_s"]) == ("completed", 8.0, 0.0)
    assert (view["avg_task_s"], view["tasks_per_minute"]) == (8.0, 7.5)
    kit.farm.requeue_task(state.tasks[0].id)
    again = kit.farm.board.jobs[job_id]
    assert (again.completed_s, again.timed_completed) == (0.0, 0)
    assert job_view(again, kit.clock.wall())["avg_task_s"] is None


def test_ffmpeg_frame_lines_are_progress_over_the_tasks_range() -> None:
    parser = ProgressParser(FFMPEG_PROGRESS, 101, 300)
    assert parser.feed("frame=   50 fps= 25 q=28.0 size=  256kB time=00:00:02.00\r") == 25.0
    assert parser.feed("frame=  200 fps= 25 q=-1.0 Lsize= 1024kB\n") == 100.0
    assert ProgressParser(FFMPEG_PROGRESS).feed("frame=   50 fps=25\r") is None  # no range


# -- the console and the API ---------------------------------------------------------------------
def test_console_tasks_and_jobs_show_attempts_made_elapsed_eta_and_why(tmp_path: Path) -> None:
    master = MasterKit(tmp_path)
    try:
        worker, peer = master.agent("worker", "w1", info={"slots": 1})
        master.call("jobs.submit", name="shot", argv=["render", "{frame}"], frames="1-3")
        master.dispatch()
        (order,) = peer.take()
        master.call("task.started", worker, attempt=order["attempt"], pid=4)
        master.clock.advance(6.0)
        master.call("task.finished", worker, attempt=order["attempt"], exit_code=0)
        master.dispatch()
        (second,) = peer.take()
        master.call("task.started", worker, attempt=second["attempt"], pid=5)
        master.clock.advance(3.0)
        master.call("task.progress", worker, attempt=second["attempt"], percent=50)
        tasks = master.console("tasks 1").splitlines()
        header = tasks[0].split()
        done, running = tasks[1].split(), tasks[2].split()
        attempts = header.index("ATTEMPTS")
        assert (done[attempts], running[attempts]) == ("1", "1")  # ran once: 1, not 0
        assert header[5:] == ["ATTEMPTS", "EXIT", "ELAPSED", "PROGRESS", "REASON", "ERROR"]
        assert (done[3], done[5], done[7]) == ("completed", "1", "6s")  # ran once: 1, not 0
        assert (running[3], running[5], running[7], running[8]) == ("running", "1", "3s", "50%")
        job = master.console("job 1")
        assert "timing:    elapsed 9s, eta 9s, 6s per task, 6.67 tasks/min" in job
        jobs = master.console("jobs").splitlines()
        assert jobs[0].split()[-2:] == ["ELAPSED", "ETA"]
        assert jobs[1].split()[-2:] == ["9s", "9s"]
        view = master.call("jobs.get", job_id=1)
        assert (view["elapsed_s"], view["eta_s"], view["avg_task_s"]) == (9.0, 9.0, 6.0)
        listed = master.call("tasks.list", job_id=1)["tasks"]
        assert [(t["attempts_made"], t["elapsed_s"]) for t in listed] == [
            (1, 6.0),
            (1, 3.0),
            (0, None),
        ]
        help_text = master.console("help submit")
        assert "progress=REGEX" in help_text and "retry_delay=SECONDS" in help_text
        assert "a group named percent, frame (a frame number) or count" in help_text
        assert re.search(r"retry_delay_s \(number, 0 to 86400; default null\)", help_text)
        assert "`count` (frames done, e.g. ffmpeg's `frame=`)" in help_text
    finally:
        master.close()


def test_the_api_never_reports_exit_code_none(tmp_path: Path) -> None:
    """task.finished without an exit code (it could not start, or an older worker said
    nothing): the task's error and its log's last line say what happened, not "None"."""
    master = MasterKit(tmp_path)
    try:
        worker, peer = master.agent("worker", "w1", info={"slots": 1})
        master.call("jobs.submit", name="x", argv=["/no/such/binary"], max_attempts=1)
        master.call("jobs.submit", name="y", argv=["true"], max_attempts=1)
        master.dispatch()
        (first,) = peer.take()
        error = "cannot start: No such file or directory: /no/such/binary"
        master.call("task.finished", worker, attempt=first["attempt"], exit_code=None, error=error)
        master.dispatch()
        (second,) = peer.take()
        master.call("task.finished", worker, attempt=second["attempt"], exit_code=None)
        for job_id, words in ((1, error), (2, "ended without an exit code")):
            (task,) = master.call("tasks.list", job_id=job_id)["tasks"]
            assert (task["status"], task["error"]) == ("failed", words)
            log = master.call("tasks.log", task_id=task["id"])["text"]
            assert "None" not in log and f"ended: {words} after" in log
    finally:
        master.close()
