"""Reads of the job farm's history: finished jobs and their tasks, which the master does not keep
in memory (farmhand/master/jobs/farm.py unloads a job once it is finished and stored).

Views of a finished job come from here, one statement each, in the Store's DB thread: a page of
jobs of some statuses newest first with their task counts (`jobs.list`), one job with its tasks
and blocklist (`jobs.get`, or to load it back for a requeue), a page of a job's tasks, one task
by id, a worker's newest tasks (its page), and the jobs finished before a time (retention).
The statements use the indexes of migration 14 (job status and id), 15 (task worker and id) and
the task table's (job_id, task_index): none scans the task table, whose size is the history's.

Lists of ids and statuses are bound as one parameter (a JSON text on SQLite, an array on
PostgreSQL), so each statement is fixed text whatever their length.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import starmap
from typing import Any

import orjson

from models.jobstore import BLOCKLIST, JOB, TASK, BlocklistRecord, JobRecord, TaskRecord, job_of
from models.store import Store

# A job of the history: its record and its tasks counted by status.
Counted = tuple[JobRecord, dict[str, int]]


class JobHistory:
    """Finished jobs and tasks as stored: reads only (the farm's journal does the writing)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        pg = self._pg = store.backend == "postgresql"
        p = store.db.param

        def among(column: str) -> str:
            return (
                f'"{column}" = ANY({p})'
                if pg
                else f'"{column}" IN (SELECT value FROM json_each({p}))'
            )

        def outside(column: str) -> str:
            return (
                f'NOT ("{column}" = ANY({p}))'
                if pg
                else f'"{column}" NOT IN (SELECT value FROM json_each({p}))'
            )

        where = f" WHERE {among('status')} AND {outside('id')}"
        tail = f' ORDER BY "id" DESC LIMIT {p} OFFSET {p}'
        # One status: the (status, id) index yields the page in order. Several (all finished):
        # most jobs are, so walking the ids backwards beats sorting them all; SQLite is told
        # not to use the status index with a unary + (PostgreSQL's planner sees the list).
        self._page_one = JOB.select(f' WHERE "status" = {p} AND {outside("id")}{tail}')
        several = f"+{among('status')}" if not pg else among("status")
        self._page = JOB.select(f" WHERE {several} AND {outside('id')}{tail}")
        self._count = f'SELECT COUNT(*) FROM "job"{where}'
        self._counts = (
            f'SELECT "job_id", "status", COUNT(*) FROM "task" WHERE {among("job_id")} '
            'GROUP BY "job_id", "status"'
        )
        self._job = JOB.select(f' WHERE "id" = {p}')
        self._jobs = JOB.select(f" WHERE {among('id')}")
        # The same orders as the pages, ids only (the index alone answers).
        self._ids_one = f'SELECT "id" FROM "job" WHERE "status" = {p} AND {outside("id")}{tail}'
        self._ids_several = f'SELECT "id" FROM "job" WHERE {several} AND {outside("id")}{tail}'
        self._status = f'SELECT "status" FROM "job" WHERE "id" = {p}'
        self._tasks_total = f'SELECT "tasks_total" FROM "job" WHERE "id" = {p}'
        self._tasks = TASK.select(f' WHERE "job_id" = {p} ORDER BY "task_index"')
        self._task_page = TASK.select(
            f' WHERE "job_id" = {p} ORDER BY "task_index" LIMIT {p} OFFSET {p}'
        )
        self._task = TASK.select(f' WHERE "id" = {p}')
        self._worker_tasks = TASK.select(f' WHERE "worker" = {p} ORDER BY "id" DESC LIMIT {p}')
        self._blocklist = BLOCKLIST.select(f' WHERE "job_id" = {p} ORDER BY "worker"')
        self._before = (
            f'SELECT "id" FROM "job" WHERE {among("status")} AND "updated" < {p} ORDER BY "id"'
        )

    def _ids(self, values: Sequence[Any]) -> Any:
        listed = list(values)
        return listed if self._pg else orjson.dumps(listed).decode()

    # -- public API (any greenlet) ---------------------------------------------------------------

    def page(
        self, statuses: Sequence[str], skip_ids: Sequence[int], limit: int, offset: int
    ) -> tuple[list[Counted], int]:
        """Jobs of `statuses` but those of `skip_ids` (the ones in memory), newest first: the
        page `offset`, `limit` with each job's task counts, and how many there are in all."""
        return self._store.read(self._do_page, list(statuses), list(skip_ids), limit, offset)

    def ids(
        self, statuses: Sequence[str], skip_ids: Sequence[int], limit: int
    ) -> tuple[list[int], int]:
        """The first `limit` ids of `page` (newest first), and how many there are in all."""
        return self._store.read(self._do_ids, list(statuses), list(skip_ids), limit)

    def counted(self, job_ids: Sequence[int]) -> list[Counted]:
        """These jobs with their task counts, in the order given (missing ones left out)."""
        return self._store.read(self._do_counted, list(job_ids))

    def job(self, job_id: int) -> tuple[JobRecord, list[TaskRecord], list[BlocklistRecord]] | None:
        """One job with all its tasks (by index) and its blocklist, or None."""
        return self._store.read(self._do_job, job_id)

    def status(self, job_id: int) -> str | None:
        """A stored job's status, None if there is no such job."""
        return self._store.read(self._do_status, job_id)

    def tasks(
        self, job_id: int, offset: int, limit: int | None
    ) -> tuple[list[TaskRecord], int] | None:
        """A page of a job's tasks by index and how many it has; None if there is no job."""
        return self._store.read(self._do_tasks, job_id, offset, limit)

    def task(self, task_id: int) -> TaskRecord | None:
        return self._store.read(self._do_task, task_id)

    def worker_tasks(self, worker: str, limit: int) -> list[TaskRecord]:
        """The newest tasks `worker` ran, as stored (the (worker, id) index of migration 15)."""
        return self._store.read(self._do_worker_tasks, worker, limit)

    def finished_before(self, statuses: Sequence[str], before: float) -> list[int]:
        """Ids of the jobs of `statuses` last changed before `before` (wall seconds)."""
        return self._store.read(self._do_before, list(statuses), before)

    # -- DB thread -------------------------------------------------------------------------------

    def _do_page(
        self, statuses: list[str], skip_ids: list[int], limit: int, offset: int
    ) -> tuple[list[Counted], int]:
        db = self._store.db
        bound = (self._ids(statuses), self._ids(skip_ids))
        total = int(db.execute_sql(self._count, bound).fetchone()[0])
        if len(statuses) == 1:
            cursor = db.execute_sql(self._page_one, (statuses[0], bound[1], limit, offset))
        else:
            cursor = db.execute_sql(self._page, (*bound, limit, offset))
        return self._with_counts([job_of(row) for row in cursor.fetchall()]), total

    def _do_ids(
        self, statuses: list[str], skip_ids: list[int], limit: int
    ) -> tuple[list[int], int]:
        db = self._store.db
        bound = (self._ids(statuses), self._ids(skip_ids))
        total = int(db.execute_sql(self._count, bound).fetchone()[0])
        if len(statuses) == 1:
            cursor = db.execute_sql(self._ids_one, (statuses[0], bound[1], limit, 0))
        else:
            cursor = db.execute_sql(self._ids_several, (*bound, limit, 0))
        return [int(row[0]) for row in cursor.fetchall()], total

    def _do_counted(self, job_ids: list[int]) -> list[Counted]:
        if not job_ids:
            return []
        rows = self._store.db.execute_sql(self._jobs, (self._ids(job_ids),)).fetchall()
        found = {job.id: job for job in map(job_of, rows)}
        return self._with_counts([found[i] for i in job_ids if i in found])

    def _with_counts(self, jobs: list[JobRecord]) -> list[Counted]:
        db = self._store.db
        # Stored with the job when it left memory; counted for jobs finished before that was.
        counts = {job.id: job.task_counts or {} for job in jobs}
        uncounted = [job.id for job in jobs if job.task_counts is None]
        if uncounted:
            rows = db.execute_sql(self._counts, (self._ids(uncounted),)).fetchall()
            for job_id, status, count in rows:
                counts[job_id][status] = int(count)
        return [(job, counts[job.id]) for job in jobs]

    def _do_job(
        self, job_id: int
    ) -> tuple[JobRecord, list[TaskRecord], list[BlocklistRecord]] | None:
        db = self._store.db
        row = db.execute_sql(self._job, (job_id,)).fetchone()
        if row is None:
            return None
        tasks = list(starmap(TaskRecord, db.execute_sql(self._tasks, (job_id,)).fetchall()))
        blocklist = list(
            starmap(BlocklistRecord, db.execute_sql(self._blocklist, (job_id,)).fetchall())
        )
        return job_of(row), tasks, blocklist

    def _do_status(self, job_id: int) -> str | None:
        row = self._store.db.execute_sql(self._status, (job_id,)).fetchone()
        return None if row is None else str(row[0])

    def _do_tasks(
        self, job_id: int, offset: int, limit: int | None
    ) -> tuple[list[TaskRecord], int] | None:
        db = self._store.db
        row = db.execute_sql(self._tasks_total, (job_id,)).fetchone()
        if row is None:
            return None
        # -1 is "no limit" to SQLite; PostgreSQL takes NULL (LIMIT ALL).
        bound_limit: int | None = limit if limit is not None else (None if self._pg else -1)
        cursor = db.execute_sql(self._task_page, (job_id, bound_limit, offset))
        return list(starmap(TaskRecord, cursor.fetchall())), int(row[0])

    def _do_task(self, task_id: int) -> TaskRecord | None:
        row = self._store.db.execute_sql(self._task, (task_id,)).fetchone()
        return None if row is None else TaskRecord(*row)

    def _do_worker_tasks(self, worker: str, limit: int) -> list[TaskRecord]:
        cursor = self._store.db.execute_sql(self._worker_tasks, (worker, limit))
        return list(starmap(TaskRecord, cursor.fetchall()))

    def _do_before(self, statuses: list[str], before: float) -> list[int]:
        cursor = self._store.db.execute_sql(self._before, (self._ids(statuses), before))
        return [int(row[0]) for row in cursor.fetchall()]
