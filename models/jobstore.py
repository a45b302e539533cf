"""Storage of the job farm: jobs, tasks and per-job worker blocklists.

The master keeps jobs and tasks in memory and is the only writer. It writes a job with all its
tasks once at submit (`insert_job`, durable before `jobs.submit` replies) and afterwards writes
behind: each flush hands `save_changes` every job, task and blocklist row changed since the last
one, stored in one transaction. Everything runs in the Store's DB thread (`Store.call`), with
fixed SQL derived from models/schema.py and bulk statements: sqlite3 executemany, PostgreSQL
binary COPY and pipelined executemany. A flush of thousands of task transitions thus costs the
hub nothing but the wait of the flushing greenlet.

Records handed in are read by the DB thread while other greenlets run: a row may mix values from
before and after a concurrent change, which is harmless as long as the master marks a changed
record dirty again (the next flush then writes its final state).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import starmap
from operator import attrgetter
from typing import Any

import orjson

from models import schema
from models.store import Store
from models.tables import Table, copy_rows, quoted, record_fields

JOB = Table.of(schema.Job)
TASK = Table.of(schema.Task)
BLOCKLIST = Table.of(schema.JobBlocklist)


@dataclass(slots=True)
class JobRecord:
    id: int
    name: str
    status: str
    priority: int
    argv: list[str]
    frames: str
    chunk: int
    tags: list[str]
    max_attempts: int
    timeout_s: float | None
    env: dict[str, str]
    cwd: str | None
    depends_on: list[int]
    progress_regex: str | None
    fail_policy: str
    created: float
    updated: float
    tasks_total: int
    # Seconds before the first retry of a failed task, doubling after (None: the default).
    retry_delay_s: float | None = None
    # A glob of the files a task writes, relative to its cwd (placeholders allowed), or None.
    outputs: str | None = None
    # A finished job's tasks by status, stored when it leaves memory (its list views read them
    # from the job row); None while it is live, or for a job finished before migration 14.
    task_counts: dict[str, int] | None = None


@dataclass(slots=True)
class TaskRecord:
    id: int
    job_id: int
    index: int
    frame_start: int | None
    frame_end: int | None
    status: str
    worker: str | None
    attempt: str | None
    attempts: int
    dispatches: int
    exit_code: int | None
    error: str | None
    progress: float
    started: float | None
    finished: float | None
    # Why the last attempt ended other than by success (farmhand/master/jobs/outcomes.py).
    reason: str | None = None


@dataclass(slots=True)
class BlocklistRecord:
    job_id: int
    worker: str
    failures: int


# Records list the columns in table order, so a fetched row IS the constructor's argument list
# (TaskRecord(*row)) and attrgetter builds a written row in C.
_TASK_FIELDS = record_fields(TaskRecord, TASK.columns, {"task_index": "index"})
record_fields(JobRecord, JOB.columns)
record_fields(BlocklistRecord, BLOCKLIST.columns)
# What a flush rewrites: every column but the ones fixed at submit.
_TASK_MUTABLE = TASK.but("id", "job_id", "task_index", "frame_start", "frame_end")
_JOB_MUTABLE = JOB.but("id", "created")
_JOB_JSON = tuple(JOB.columns.index(c) for c in ("argv", "tags", "env", "depends_on"))
_COUNTS = JOB.columns.index("task_counts")  # JSON too, or NULL

_task_row = attrgetter(*_TASK_FIELDS)
_task_update_row = attrgetter(*_TASK_MUTABLE, "id")  # SQLite: SET … WHERE id = last
_task_staging_row = attrgetter("id", *_TASK_MUTABLE)  # PostgreSQL: id first, like the COPY


@dataclass(frozen=True, slots=True)
class _PgUpdate:
    """PostgreSQL: UPDATE `table` from rows (id first) via a binary COPY into a temp table and
    one UPDATE … FROM. COPY beats executemany here: one round trip, the rows encoded in C."""

    create: str
    copy: str
    types: list[str]
    update: str
    drop: str

    @classmethod
    def of(cls, table: Table, columns: Sequence[str]) -> _PgUpdate:
        staging = f"{table.name}_changes"
        cols = ("id", *columns)
        sets = ", ".join(f'"{c}" = s."{c}"' for c in columns)
        return cls(
            # CREATE … AS SELECT … WITH NO DATA takes the column types, not the NOT NULLs.
            create=f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS "
            f'SELECT {quoted(cols)} FROM "{table.name}" WITH NO DATA',
            copy=table.copy_in(cols, into=staging),
            types=table.types(cols),
            update=f'UPDATE "{table.name}" AS t SET {sets} FROM {staging} AS s '
            'WHERE t."id" = s."id"',
            # Dropped now, not only at commit, in case the caller wraps us in a transaction.
            drop=f"DROP TABLE {staging}",
        )

    def run(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        cursor.execute(self.create)
        copy_rows(cursor, self.copy, self.types, rows)
        cursor.execute(self.update)
        cursor.execute(self.drop)


_PG_UPDATE_JOBS = _PgUpdate.of(JOB, _JOB_MUTABLE)
_PG_UPDATE_TASKS = _PgUpdate.of(TASK, _TASK_MUTABLE)
_PG_COPY_TASKS = TASK.copy_in()
_PG_TASK_TYPES = TASK.types(TASK.columns)


class JobStore:
    """Job-farm tables on top of a Store: bulk writes and whole-table loads, in its DB thread."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.store = store  # the history's reads share it (models/jobhistory.py)
        self._pg = store.backend == "postgresql"
        p = store.db.param
        self._select_jobs = JOB.select(' ORDER BY "id"')
        outside = (
            '"status" = ANY(%s)' if self._pg else '"status" IN (SELECT value FROM json_each(?))'
        )
        self._select_live_jobs = JOB.select(f' WHERE NOT ({outside}) ORDER BY "id"')
        self._select_tasks = TASK.select(' ORDER BY "job_id", "task_index"')
        # One fixed statement whatever the number of jobs: a bound list, not a built IN (…).
        where = '"job_id" = ANY(%s)' if self._pg else '"job_id" IN (SELECT value FROM json_each(?))'
        self._select_job_tasks = TASK.select(f' WHERE {where} ORDER BY "job_id", "task_index"')
        self._insert_job = JOB.insert(p)
        self._insert_task = TASK.insert(p)
        self._update_job = JOB.update(p, _JOB_MUTABLE)
        self._update_task = TASK.update(p, _TASK_MUTABLE)
        # PostgreSQL too: psycopg 3 pipelines executemany (one round trip, not one per row).
        self._upsert_blocklist = BLOCKLIST.upsert(("job_id", "worker"), BLOCKLIST.values(p))
        self._select_blocklist = BLOCKLIST.select(' ORDER BY "job_id", "worker"')
        self._max_ids = (
            'SELECT (SELECT COALESCE(MAX("id"), 0) FROM "job"), '
            '(SELECT COALESCE(MAX("id"), 0) FROM "task")'
        )
        self._delete = tuple(
            f'DELETE FROM "{table}" WHERE "{col}" = {p}'
            for table, col in (("job_blocklist", "job_id"), ("task", "job_id"), ("job", "id"))
        )

    # -- public API (any greenlet) ---------------------------------------------------------------

    def max_ids(self) -> tuple[int, int]:
        """(highest job id, highest task id), 0 for an empty table: where the master counts on."""
        return self._store.call(self._do_max_ids)

    def insert_job(self, job: JobRecord, tasks: Sequence[TaskRecord]) -> None:
        """Insert the job and all its tasks in one transaction, committed durably on return."""
        self._store.call(self._do_insert_job, job, tasks)

    def save_changes(
        self,
        jobs: Sequence[JobRecord],
        tasks: Sequence[TaskRecord],
        blocklist: Sequence[BlocklistRecord],
    ) -> None:
        """Write one flush in one transaction: every column of `jobs` but id and created, the
        mutable columns of `tasks`, and upsert `blocklist`. Rows must exist (insert_job)."""
        if jobs or tasks or blocklist:
            self._store.call(self._do_save_changes, jobs, tasks, blocklist)

    def load_jobs(self, skip_statuses: Sequence[str] = ()) -> list[JobRecord]:
        """Every job but those of `skip_statuses` (the finished ones, which stay on disk),
        ordered by id."""
        return self._store.call(self._do_load_jobs, list(skip_statuses))

    def load_tasks(self, job_ids: Sequence[int] | None = None) -> list[TaskRecord]:
        """All tasks (None) or those of `job_ids`, ordered by (job_id, index)."""
        if job_ids is not None and not job_ids:
            return []
        return self._store.call(self._do_load_tasks, job_ids)

    def load_blocklist(self) -> list[BlocklistRecord]:
        return self._store.call(self._do_load_blocklist)

    def delete_job(self, job_id: int) -> None:
        """Delete the job, its tasks and its blocklist rows in one transaction."""
        self._store.call(self._do_delete_job, job_id)

    # -- DB thread -------------------------------------------------------------------------------

    def _do_max_ids(self) -> tuple[int, int]:
        row = self._store.db.execute_sql(self._max_ids).fetchone()
        return int(row[0]), int(row[1])

    def _do_insert_job(self, job: JobRecord, tasks: Sequence[TaskRecord]) -> None:
        # Durable at commit: SQLite runs with synchronous=FULL (models/db.py), and PostgreSQL's
        # synchronous_commit is on by default, so the commit waits for the WAL flush.
        with self._store.transaction() as cursor:
            cursor.execute(self._insert_job, _job_row(job))
            if not tasks:
                return
            if self._pg:
                copy_rows(cursor, _PG_COPY_TASKS, _PG_TASK_TYPES, map(_task_row, tasks))
            else:
                cursor.executemany(self._insert_task, map(_task_row, tasks))

    def _do_save_changes(
        self,
        jobs: Sequence[JobRecord],
        tasks: Sequence[TaskRecord],
        blocklist: Sequence[BlocklistRecord],
    ) -> None:
        # ON CONFLICT DO UPDATE refuses to touch one row twice in a statement: last one wins.
        bl_rows = list(
            {(b.job_id, b.worker): (b.job_id, b.worker, b.failures) for b in blocklist}.values()
        )
        with self._store.transaction() as cursor:
            if self._pg:
                if jobs:
                    _PG_UPDATE_JOBS.run(cursor, [(j.id, *_job_mutable_row(j)) for j in jobs])
                if tasks:
                    # UPDATE … FROM picks an arbitrary row when an id repeats: keep the last.
                    _PG_UPDATE_TASKS.run(
                        cursor, list({t.id: _task_staging_row(t) for t in tasks}.values())
                    )
            else:
                if jobs:
                    job_rows = [(*_job_mutable_row(j), j.id) for j in jobs]
                    cursor.executemany(self._update_job, job_rows)
                if tasks:
                    cursor.executemany(self._update_task, map(_task_update_row, tasks))
            if bl_rows:
                cursor.executemany(self._upsert_blocklist, bl_rows)

    def _do_load_jobs(self, skip_statuses: list[str]) -> list[JobRecord]:
        db = self._store.db
        if skip_statuses:
            param: Any = skip_statuses if self._pg else orjson.dumps(skip_statuses).decode()
            cursor = db.execute_sql(self._select_live_jobs, (param,))
        else:
            cursor = db.execute_sql(self._select_jobs)
        return [job_of(row) for row in cursor.fetchall()]

    def _do_load_tasks(self, job_ids: Sequence[int] | None) -> list[TaskRecord]:
        db = self._store.db
        if job_ids is None:
            cursor = db.execute_sql(self._select_tasks)
        else:
            ids = [int(i) for i in job_ids]
            param: Any = ids if self._pg else orjson.dumps(ids).decode()
            cursor = db.execute_sql(self._select_job_tasks, (param,))
        # Columns are in field order: starmap builds the records without a Python-level loop.
        return list(starmap(TaskRecord, cursor.fetchall()))

    def _do_load_blocklist(self) -> list[BlocklistRecord]:
        rows = self._store.db.execute_sql(self._select_blocklist).fetchall()
        return list(starmap(BlocklistRecord, rows))

    def _do_delete_job(self, job_id: int) -> None:
        db = self._store.db
        with db.atomic():
            for sql in self._delete:
                db.execute_sql(sql, (job_id,))


def job_of(row: Sequence[Any]) -> JobRecord:
    """A fetched job row (in column order, which is JobRecord's field order) as a record."""
    values = list(row)
    for i in _JOB_JSON:
        values[i] = orjson.loads(values[i])
    if values[_COUNTS] is not None:
        values[_COUNTS] = orjson.loads(values[_COUNTS])
    return JobRecord(*values)


def _job_row(j: JobRecord) -> tuple[Any, ...]:
    """The job as a row in column order, JSON columns serialised (in the DB thread)."""
    dumps = orjson.dumps
    return (
        j.id, j.name, j.status, j.priority, dumps(j.argv).decode(), j.frames, j.chunk,
        dumps(j.tags).decode(), j.max_attempts, j.timeout_s, dumps(j.env).decode(), j.cwd,
        dumps(j.depends_on).decode(), j.progress_regex, j.fail_policy, j.created, j.updated,
        j.tasks_total, j.retry_delay_s, j.outputs,
        None if j.task_counts is None else dumps(j.task_counts).decode(),
    )  # fmt: skip


_CREATED = JOB.columns.index("created")


def _job_mutable_row(j: JobRecord) -> tuple[Any, ...]:
    """The job's _JOB_MUTABLE values: its row without id and created."""
    row = _job_row(j)
    return row[1:_CREATED] + row[_CREATED + 1 :]
