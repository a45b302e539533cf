"""Finished jobs out of memory: their views from the database, loading one back, deleting them.

The board holds the live jobs (farmhand/master/jobs/board.py: a finished job leaves once stored).
Views read both: `list_jobs` merges the board's jobs with a page of the stored finished ones,
newest first; `view_job`, `task_page` and `find_task` answer from memory when they can and from
the database otherwise, without loading anything into the board. Verbs that change a job load it
back first (`job_for_change`). `delete_job` removes a finished job everywhere: its rows (job,
tasks, blocklist), its task logs, and whatever the farm's `on_job_deleted` listeners keep.
`expire` is the retention: finished jobs unchanged for `job_retention_days` are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from models.health import DatabaseUnavailable
from models.jobstore import TaskRecord
from protocol.errors import conflict, not_found

from .board import JobState
from .states import JOB_FINAL, JobStatus
from .views import job_view

if TYPE_CHECKING:
    from .farm import JobFarm

log = logging.getLogger(__name__)

FINAL = sorted(JOB_FINAL)  # the statuses stored jobs are listed by


def list_jobs(
    farm: JobFarm, status: str | None, limit: int, offset: int, now: float
) -> tuple[list[dict[str, Any]], int, bool]:
    """Views of the jobs of `status` (None: all), newest first, how many there are, and whether
    the finished ones could be read; their timing as of `now` (a stored job listed without its
    tasks has none: docs/jobs.md). While the database is unavailable the jobs in memory (all the
    live ones) are still listed, and the third value is False: the history is missing."""
    live = [s for s in farm.board.jobs.values() if status is None or s.rec.status == status]
    stored = FINAL if status is None else [status] if status in JOB_FINAL else []
    if stored:
        try:
            return (*_list_with_history(farm, live, stored, limit, offset, now), True)
        except DatabaseUnavailable:
            pass
    live.sort(key=lambda state: -state.id)
    views = [job_view(state, now) for state in live[offset : offset + limit]]
    return views, len(live), not stored


def _list_with_history(
    farm: JobFarm,
    live: list[JobState],
    stored: Sequence[str],
    limit: int,
    offset: int,
    now: float,
) -> tuple[list[dict[str, Any]], int]:
    # A job in memory may be stored with an older status: memory has the say for it.
    skip = list(farm.board.jobs)
    if not live:  # the usual case for a finished status: one page straight from the database
        page, total = farm.history.page(stored, skip, limit, offset)
        return [job_view(JobState.summary(rec, counts), now) for rec, counts in page], total
    # Merged by id: the stored ids up to the page's end, then only the page's rows.
    stored_ids, stored_total = farm.history.ids(stored, skip, offset + limit)
    by_id = {state.id: state for state in live}
    chosen = sorted([*by_id, *stored_ids], reverse=True)[offset : offset + limit]
    rows = farm.history.counted([job_id for job_id in chosen if job_id not in by_id])
    by_id.update((rec.id, JobState.summary(rec, counts)) for rec, counts in rows)
    views = [job_view(by_id[job_id], now) for job_id in chosen if job_id in by_id]
    return views, len(live) + stored_total


class KnownJobs:
    """`job_id in known`: a job in memory or stored (jobs.submit's depends_on may name one that
    finished and left memory)."""

    def __init__(self, farm: JobFarm) -> None:
        self._farm = farm

    def __contains__(self, job_id: object) -> bool:
        return isinstance(job_id, int) and self._farm.known_job(job_id)


def view_job(farm: JobFarm, job_id: int) -> JobState:
    """The job with all its tasks, from memory or as stored (not loaded into the board)."""
    state = farm.board.jobs.get(job_id)
    if state is not None:
        return state
    stored = farm.history.job(job_id)
    if stored is None:
        raise not_found(f"no job {job_id}", "no_such_job")
    job, tasks, blocklist = stored
    state = JobState(job, tasks)
    state.blocklist = {row.worker: row.failures for row in blocklist if row.failures > 0}
    return state


def task_page(
    farm: JobFarm, job_id: int, offset: int, limit: int | None
) -> tuple[list[TaskRecord], int]:
    """A page of the job's tasks by index, and how many it has."""
    state = farm.board.jobs.get(job_id)
    if state is not None:
        end = None if limit is None else offset + limit
        return state.tasks[offset:end], len(state.tasks)
    found = farm.history.tasks(job_id, offset, limit)
    if found is None:
        raise not_found(f"no job {job_id}", "no_such_job")
    return found


def find_task(farm: JobFarm, task_id: int) -> TaskRecord:
    task = farm.board.tasks.get(task_id) or farm.history.task(task_id)
    if task is None:
        raise not_found(f"no task {task_id}", "no_such_task")
    return task


def job_for_change(farm: JobFarm, job_id: int) -> JobState:
    """The job in the board, loaded back from the database if it had left memory."""
    state = farm.board.jobs.get(job_id)
    if state is not None:
        return state
    if job_id in farm.deleting:
        raise not_found(f"no job {job_id} (being deleted)", "no_such_job")
    stored = farm.history.job(job_id)
    state = farm.board.jobs.get(job_id)  # loaded meanwhile by another call
    if state is not None:
        return state
    if stored is None or job_id in farm.deleting:
        raise not_found(f"no job {job_id}", "no_such_job")
    log.info("job %d (%s) loaded back from the database", job_id, stored[0].name)
    return farm.board.revive(*stored)


def note_dependencies(farm: JobFarm, job_ids: list[int]) -> None:
    """Dependencies out of memory that failed or were canceled keep their dependents waiting:
    the board remembers them (`ended`); completed or missing ones are nothing to wait for."""
    for job_id in job_ids:
        if job_id in farm.board.jobs or job_id in farm.board.ended:
            continue
        status = farm.history.status(job_id)
        if status in (JobStatus.FAILED, JobStatus.CANCELED):
            farm.board.ended[job_id] = status


def delete_job(farm: JobFarm, job_id: int) -> None:
    """Delete a completed, failed or canceled job: rows, task logs, listeners' data."""
    if job_id in farm.deleting:
        raise not_found(f"no job {job_id} (being deleted)", "no_such_job")
    state = farm.board.jobs.get(job_id)
    status = state.rec.status if state is not None else farm.history.status(job_id)
    if status is None:
        raise not_found(f"no job {job_id}", "no_such_job")
    if status not in JOB_FINAL:
        raise conflict(
            f"job {job_id} is {status}: only completed, failed or canceled jobs can be deleted",
            "bad_job_state",
        )
    farm.deleting.add(job_id)
    try:
        if state is not None:
            # Its last changes must be stored before its rows go (else a flush brings back its
            # blocklist rows), and it must still be finished then.
            farm.journal.committed().get()
            state = farm.board.jobs.get(job_id)
            if state is not None:
                if state.rec.status not in JOB_FINAL:
                    raise conflict(
                        f"job {job_id} is {state.rec.status}: only completed, failed or "
                        "canceled jobs can be deleted",
                        "bad_job_state",
                    )
                farm.board.forget(state)
        farm.jobstore.delete_job(job_id)
    finally:
        farm.deleting.discard(job_id)
    farm.board.ended.pop(job_id, None)
    farm.logs.remove([job_id])
    for listener in farm.on_job_deleted:
        try:
            listener(job_id)
        except Exception:
            log.exception("job %d: an on_job_deleted listener failed", job_id)
    log.info("job %d deleted", job_id)


def expire(farm: JobFarm, retention_s: float, now: float) -> list[int]:
    """Delete the finished jobs unchanged for `retention_s` before `now`; their ids."""
    deleted = []
    for job_id in farm.history.finished_before(FINAL, now - retention_s):
        state = farm.board.jobs.get(job_id)
        if state is not None and state.rec.status not in JOB_FINAL:
            continue  # loaded back and requeued since it was stored
        try:
            delete_job(farm, job_id)
        except Exception as exc:
            log.warning("retention: job %d not deleted: %s", job_id, exc)
            continue
        deleted.append(job_id)
    if deleted:
        log.info(
            "retention: deleted %d jobs finished before the last %.1f days",
            len(deleted),
            retention_s / 86400.0,
        )
    return deleted
