"""What jobs and tasks look like on the wire (the job view and the task view; docs/api.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models.jobstore import TaskRecord
from protocol.frames import format_chunk
from protocol.times import iso_utc

from .states import TaskStatus

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


def job_view(state: JobState) -> dict[str, Any]:
    job = state.rec
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
    }


def task_frames(task: TaskRecord) -> str:
    if task.frame_start is None or task.frame_end is None:
        return ""
    return format_chunk(task.frame_start, task.frame_end)


def task_view(task: TaskRecord) -> dict[str, Any]:
    duration = None
    if task.started is not None and task.finished is not None:
        duration = round(task.finished - task.started, 3)
    return {
        "id": task.id,
        "job_id": task.job_id,
        "index": task.index,
        "frames": task_frames(task),
        "status": task.status,
        "worker": task.worker,
        "attempt": task.attempt,
        "attempts": task.attempts,
        "exit_code": task.exit_code,
        "error": task.error,
        "progress": task.progress,
        "started": iso_utc(task.started),
        "finished": iso_utc(task.finished),
        "duration_s": duration,
    }
