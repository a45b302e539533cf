"""Job and task states as tables. docs/states.md shows the same tables with who triggers what.

A task moves only through TASK_TRANSITIONS; anything else is a conflict (-32009). A job's status
is derived from its tasks except for the operator's `paused` and `canceled` and the failure
policy's `failed`.
"""

from __future__ import annotations

from enum import StrEnum

from protocol.errors import conflict


class JobStatus(StrEnum):
    QUEUED = "queued"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class TaskStatus(StrEnum):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


JOB_FINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})
TASK_IN_FLIGHT = frozenset({TaskStatus.DISPATCHED, TaskStatus.RUNNING})
TASK_FINAL = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED})

Q, D, R = TaskStatus.QUEUED, TaskStatus.DISPATCHED, TaskStatus.RUNNING
C, F, X = TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED

# event: {from: to}. Who sends each event is in docs/states.md.
TASK_TRANSITIONS: dict[str, dict[TaskStatus, TaskStatus]] = {
    "dispatch": {Q: D},  # the dispatcher orders task.run
    "start": {D: R},  # the worker reports task.started
    "succeed": {D: C, R: C},  # task.finished with exit code 0
    "retry": {D: Q, R: Q},  # task.finished failed, attempts left: counts an attempt
    "fail": {D: F, R: F},  # task.finished failed, no attempts left
    "lose": {D: Q, R: Q},  # worker gone or refused the order: no attempt counted
    "cancel": {Q: X, D: X, R: X},  # operator cancels the job, or the job failed
    "requeue": {C: Q, F: Q, X: Q},  # operator requeues the job or the task
}

# Operator actions on a job: {from: to}; None means "derive from the tasks".
JOB_ACTIONS: dict[str, dict[JobStatus, JobStatus | None]] = {
    "pause": {JobStatus.QUEUED: JobStatus.PAUSED, JobStatus.ACTIVE: JobStatus.PAUSED},
    "resume": {JobStatus.PAUSED: None},
    "cancel": {
        JobStatus.QUEUED: JobStatus.CANCELED,
        JobStatus.ACTIVE: JobStatus.CANCELED,
        JobStatus.PAUSED: JobStatus.CANCELED,
    },
    "requeue": {
        JobStatus.QUEUED: None,
        JobStatus.ACTIVE: None,
        JobStatus.PAUSED: JobStatus.PAUSED,
        JobStatus.COMPLETED: None,
        JobStatus.FAILED: None,
        JobStatus.CANCELED: None,
    },
}


def task_transition(current: str, event: str) -> TaskStatus:
    target = TASK_TRANSITIONS[event].get(TaskStatus(current))
    if target is None:
        raise conflict(f"a {current} task cannot {event}", "bad_task_state")
    return target


def job_action(current: str, action: str) -> JobStatus | None:
    table = JOB_ACTIONS[action]
    status = JobStatus(current)
    if status not in table:
        allowed = ", ".join(sorted(table))
        raise conflict(f"cannot {action} a {current} job (only when {allowed})", "bad_job_state")
    return table[status]
