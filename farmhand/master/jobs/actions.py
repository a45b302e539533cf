"""Operator actions on jobs and tasks: cancel, pause, resume, requeue, set priority.

Allowed transitions are the JOB_ACTIONS and TASK_TRANSITIONS tables in states.py; anything
else is a -32009 conflict naming the current state.
"""

from __future__ import annotations

import logging

from protocol.errors import conflict

from .board import JobState
from .farm import JobFarm
from .reports import cancel_tasks
from .states import TASK_IN_FLIGHT, JobStatus, TaskStatus, job_action

log = logging.getLogger(__name__)


def cancel_job(farm: JobFarm, state: JobState) -> None:
    job_action(state.rec.status, "cancel")
    log.info("job %d (%s) canceled by the operator", state.id, state.rec.name)
    farm.board.set_job_status(state, JobStatus.CANCELED)
    cancel_tasks(farm, state, "job canceled")


def pause_job(farm: JobFarm, state: JobState) -> None:
    target = job_action(state.rec.status, "pause")
    assert target is not None
    farm.board.set_job_status(state, target)


def resume_job(farm: JobFarm, state: JobState) -> None:
    job_action(state.rec.status, "resume")
    farm.board.set_job_status(state, state.derived_status())
    farm.dispatcher.wake()


def requeue_job(farm: JobFarm, state: JobState) -> int:
    """Failed and canceled tasks go back to the queue with fresh attempts."""
    target = job_action(state.rec.status, "requeue")
    again = [
        task for task in state.tasks if task.status in (TaskStatus.FAILED, TaskStatus.CANCELED)
    ]
    if not again:
        raise conflict(
            f"job {state.id} has no failed or canceled tasks to requeue", "nothing_to_requeue"
        )
    for task in again:
        farm.board.move(task, "requeue", attempts=0, exit_code=None, finished=None)
    farm.board.clear_blocklist(state)  # a fresh start for every worker, stored
    farm.board.set_job_status(state, target or state.derived_status())
    log.info("job %d: %d tasks requeued", state.id, len(again))
    farm.dispatcher.wake()
    return len(again)


def set_priority(farm: JobFarm, state: JobState, priority: int) -> None:
    if state.rec.priority != priority:
        log.info("job %d priority %d → %d", state.id, state.rec.priority, priority)
        state.rec.priority = priority
        farm.board.generation += 1
        farm.board.job_changed(state)
        farm.dispatcher.wake()


def requeue_task(farm: JobFarm, task_id: int) -> None:
    task = farm.board.task(task_id)
    if task.status in TASK_IN_FLIGHT or task.status == TaskStatus.QUEUED:
        raise conflict(
            f"task {task_id} is {task.status}: only completed, failed or canceled "
            "tasks can be requeued",
            "bad_task_state",
        )
    state = farm.board.jobs[task.job_id]
    farm.board.move(task, "requeue", attempts=0, exit_code=None, finished=None)
    if state.rec.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED):
        farm.board.set_job_status(state, state.derived_status())
    log.info("task %d (job %d) requeued by the operator", task.id, task.job_id)
    farm.dispatcher.wake()
