"""Task logs: a silent task gets no file, its master lines are still served; writes are handed
to the writer thread once per hub loop iteration, not once per line."""

from __future__ import annotations

import time
from pathlib import Path

import gevent
import pytest

from farmhand.master.events import EventBus
from farmhand.master.jobs.tasklogs import TaskLogs
from models.jobstore import TaskRecord

pytestmark = pytest.mark.timeout(10)


def _task(task_id: int, job_id: int = 7) -> TaskRecord:
    return TaskRecord(
        id=task_id,
        job_id=job_id,
        index=task_id,
        frame_start=None,
        frame_end=None,
        status="dispatched",
        worker="w1",
        attempt=None,
        attempts=0,
        dispatches=1,
        exit_code=None,
        error=None,
        progress=0.0,
        started=None,
        finished=None,
    )


@pytest.fixture
def logs(tmp_path: Path):
    logs = TaskLogs(tmp_path / "logs", EventBus())
    yield logs
    logs.close_all()


def _text(logs: TaskLogs, task: TaskRecord, offset: int = 0, limit: int | None = None) -> str:
    text: str = logs.read(task, offset, limit)["text"]
    return text


def test_a_silent_task_gets_no_file_and_its_log_shows_the_master_lines(logs: TaskLogs) -> None:
    task = _task(1)
    logs.begin_attempt(task, "1.1.abc", "w1", 0.0)
    logs.append(task, "--- farmhand: attempt 1.1.abc ended: exit code 0 after 0.0s ---\n")
    logs.close(task)
    assert _text(logs, task) == (
        "--- farmhand: attempt 1.1.abc on w1 at 1970-01-01T00:00:00.000Z ---\n"
        "--- farmhand: attempt 1.1.abc ended: exit code 0 after 0.0s ---\n"
    )
    assert not logs.path(7, 1).exists()


def test_output_creates_the_file_and_reads_join_what_came_before(logs: TaskLogs) -> None:
    quiet, loud = _task(1), _task(2)
    logs.begin_attempt(quiet, "1.1.a", "w1", 0.0)
    logs.begin_attempt(loud, "2.1.b", "w1", 0.0)
    logs.append(loud, "--- farmhand: worker w1 lost ---\n")
    logs.begin_attempt(loud, "2.2.c", "w2", 0.0)
    logs.output(loud, "frame 1 done\n")
    logs.append(loud, "--- farmhand: attempt 2.2.c ended: exit code 0 after 1.0s ---\n")
    logs.close(loud)
    whole = _text(logs, loud)
    assert whole.splitlines() == [
        "--- farmhand: attempt 2.1.b on w1 at 1970-01-01T00:00:00.000Z ---",
        "--- farmhand: worker w1 lost ---",
        "--- farmhand: attempt 2.2.c on w2 at 1970-01-01T00:00:00.000Z ---",
        "frame 1 done",
        "--- farmhand: attempt 2.2.c ended: exit code 0 after 1.0s ---",
    ]
    assert logs.path(7, 2).exists() and not logs.path(7, 1).exists()
    # Offsets run over the joined text, across the seam between the two files.
    view = logs.read(loud, 0, None)
    assert view["size"] == len(whole.encode())
    pieces, offset = [], 0
    while offset < view["size"]:
        chunk = logs.read(loud, offset, 7)
        pieces.append(chunk["text"])
        offset = chunk["next_offset"]
    assert "".join(pieces) == whole
    assert _text(logs, quiet).startswith("--- farmhand: attempt 1.1.a on w1")


def test_a_marker_already_in_a_silent_log_is_not_written_again(logs: TaskLogs) -> None:
    task = _task(3)
    ended = "--- farmhand: attempt 3.1.a ended:"
    logs.append(task, f"{ended} exit code 0 after 0.0s ---\n")
    logs.append(task, f"{ended} exit code 0 after 0.5s ---\n", unless=ended)
    assert _text(logs, task).count("ended:") == 1


def test_a_burst_of_lines_is_one_handoff_to_the_writer_thread(logs: TaskLogs) -> None:
    for task_id in range(1, 201):
        task = _task(task_id)
        logs.begin_attempt(task, f"{task_id}.1.a", "w1", 0.0)
        logs.append(task, f"--- farmhand: attempt {task_id}.1.a ended: exit code 0 ---\n")
        logs.close(task)
    assert logs.handoffs == 0  # nothing handed over line by line
    assert _text(logs, _task(200)).count("--- farmhand:") == 2  # a read hands over at once
    assert logs.handoffs == 1
    logs.output(_task(1), "late\n")
    with gevent.Timeout(5):  # the hub's timer hands it over
        while logs.handoffs < 2:
            gevent.sleep(0.005)
    assert _text(logs, _task(1)).endswith("late\n")


def test_pruning_removes_the_job_file_too(logs: TaskLogs) -> None:
    task = _task(4, job_id=9)
    logs.begin_attempt(task, "4.1.a", "w1", 0.0)
    logs.close(task)
    assert _text(logs, task)
    assert logs.job_lines_path(9).exists()
    assert logs.prune({9: 0.0}, 10.0, 100.0) == 1
    assert not logs.job_lines_path(9).parent.exists()
    assert _text(logs, task) == ""


def test_output_goes_to_the_writer_at_once_and_sync_waits_for_the_masters_lines(
    logs: TaskLogs,
) -> None:
    """Found in the full suite: a master killed within 10 ms of a task's output lost it (the
    worker does not send output twice). Output is handed over at once; the master's own lines
    may wait, and `sync()` (the journal's, before each commit) puts them on disk."""
    task = _task(3)
    logs.output(task, "frame 3 done\n")
    deadline = time.monotonic() + 5
    while not logs.path(7, 3).exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # blocks the hub: no handoff timer can fire meanwhile
    assert logs.path(7, 3).read_text() == "frame 3 done\n"
    logs.append(task, "--- farmhand: attempt 3.1.abc ended: exit code 0 after 0.1s ---\n")
    time.sleep(0.05)
    assert "ended" not in logs.path(7, 3).read_text()  # waits for its handoff
    logs.sync()
    assert "ended: exit code 0" in logs.path(7, 3).read_text()
