"""What jobs and tasks look like on the wire (the job view and the task view; docs/api.md).

Both take the wall-clock `now`: a running task's `elapsed_s` and a job's `elapsed_s` and
`eta_s` are as of then. A job's timing comes from counters its JobState keeps as tasks move
(board.py), plus its in-flight tasks (at most a few per worker), so a view costs the same for a
job of ten tasks or of 100,000.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.jobstore import TaskRecord
from protocol.frames import format_chunk
from protocol.times import iso_utc

from .states import JobStatus, TaskStatus

if TYPE_CHECKING:
    from .board import JobState


def job_progress(state: JobState) -> float:
    """0-100: completed tasks plus the reported progress of running ones."""
    total = state.rec.tasks_total
    if not total:
        return 100.0
    done = float(state.counts[TaskStatus.COMPLETED])
    running = sum(task.progress for task in state.in_flight.values())
    return round(min(100.0, (done + running / 100.0) * 100.0 / total), 1)


def job_elapsed(state: JobState, now: float) -> float | None:
    """Seconds since its first task started: until now while it runs, until its last task
    ended once nothing is in flight and it is over (or paused); None before any started."""
    if state.first_started is None:
        return None
    end = now
    if state.rec.status != JobStatus.ACTIVE and not state.in_flight:
        end = state.last_finished if state.last_finished is not None else now
    return round(max(0.0, end - state.first_started), 3)


def average_task_s(state: JobState, now: float) -> float | None:
    """The mean run time of its completed tasks; before any completed, what its running
    tasks' progress makes of theirs (elapsed / share done); None when neither is known."""
    if state.timed_completed:
        return state.completed_s / state.timed_completed
    guesses = [
        elapsed * 100.0 / task.progress
        for task in state.in_flight.values()
        if (elapsed := running_for(task, now)) is not None and elapsed > 0 and task.progress > 0
    ]
    return sum(guesses) / len(guesses) if guesses else None


def job_eta(state: JobState, now: float, average_s: float | None) -> float | None:
    """Seconds until it is done at the pace so far: each running task's rest (from its own
    progress, else the average), plus the queued tasks at the average, shared by as many
    slots as run its tasks now. 0 once completed; None when paused, over or unknown."""
    status = state.rec.status
    if status == JobStatus.COMPLETED:
        return 0.0
    if status in (JobStatus.PAUSED, JobStatus.FAILED, JobStatus.CANCELED):
        return None
    queued = state.counts[TaskStatus.QUEUED]
    rests: list[float] = []
    for task in state.in_flight.values():
        elapsed = running_for(task, now)
        if elapsed is not None and elapsed > 0 and 0 < task.progress < 100:
            rests.append(elapsed * (100.0 - task.progress) / task.progress)
        elif average_s is not None:
            rests.append(max(0.0, average_s - (elapsed or 0.0)))
        else:
            return None
    if queued and average_s is None:
        return None
    work_s = sum(rests) + queued * (average_s or 0.0)
    lanes = max(1, len(state.in_flight))
    return round(max(max(rests, default=0.0), work_s / lanes), 1)


def job_view(state: JobState, now: float) -> dict[str, Any]:
    job = state.rec
    average_s = average_task_s(state, now)
    elapsed_s = job_elapsed(state, now)
    per_minute = None
    if elapsed_s and state.counts[TaskStatus.COMPLETED]:
        per_minute = round(state.counts[TaskStatus.COMPLETED] * 60.0 / elapsed_s, 2)
    return {
        "id": job.id,
        "name": job.name,
        "status": job.status,
        "priority": job.priority,
        "tags": job.tags,
        "created": iso_utc(job.created),
        "updated": iso_utc(job.updated),
        "tasks_total": job.tasks_total,
        "tasks_by_status": {status.value: state.counts[status] for status in TaskStatus},
        "progress": job_progress(state),
        "argv": job.argv,
        "frames": job.frames,
        "chunk": job.chunk,
        "max_attempts": job.max_attempts,
        "timeout_s": job.timeout_s,
        "depends_on": job.depends_on,
        "fail_policy": job.fail_policy,
        "retry_delay_s": job.retry_delay_s,
        "outputs": job.outputs,
        "elapsed_s": elapsed_s,
        "eta_s": job_eta(state, now, average_s),
        "avg_task_s": None if average_s is None else round(average_s, 3),
        "tasks_per_minute": per_minute,
    }


def task_frames(task: TaskRecord) -> str:
    if task.frame_start is None or task.frame_end is None:
        return ""
    return format_chunk(task.frame_start, task.frame_end)


def running_for(task: TaskRecord, now: float) -> float | None:
    """Seconds a running task has run; None if it is not running (or not started yet)."""
    if task.status != TaskStatus.RUNNING or task.started is None:
        return None
    return max(0.0, now - task.started)


def attempts_made(task: TaskRecord) -> int:
    """Attempts made: the failed ones (`attempts`, which count against max_attempts) plus the
    one running or that completed or was canceled (its attempt id is kept); a lost worker's
    attempt counts no more here than against max_attempts."""
    last_uncounted = task.attempt is not None and task.status != TaskStatus.FAILED
    return task.attempts + (1 if last_uncounted else 0)


def task_view(task: TaskRecord, now: float) -> dict[str, Any]:
    duration = None
    if task.started is not None and task.finished is not None:
        duration = round(task.finished - task.started, 3)
    running = running_for(task, now)
    return {
        "id": task.id,
        "job_id": task.job_id,
        "index": task.index,
        "frames": task_frames(task),
        "status": task.status,
        "worker": task.worker,
        "attempt": task.attempt,
        "attempts": task.attempts,
        "attempts_made": attempts_made(task),
        "exit_code": task.exit_code,
        "reason": task.reason,
        "error": task.error,
        "progress": task.progress,
        "started": iso_utc(task.started),
        "finished": iso_utc(task.finished),
        "duration_s": duration,
        "elapsed_s": round(running, 3) if running is not None else duration,
    }
