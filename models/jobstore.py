"""Storage of the job farm: jobs, tasks and per-job worker blocklists.

The master keeps jobs and tasks in memory and is the only writer. It writes a job with all its
tasks once at submit (`insert_job`, durable before `jobs.submit` replies) and afterwards writes
behind: each flush hands `save_changes` every job, task and blocklist row changed since the last
one, stored in one transaction. Everything runs in the Store's DB thread (`Store.call`), with
fixed SQL and bulk statements: sqlite3 executemany, PostgreSQL COPY. A flush of thousands of
task transitions thus costs the hub nothing but the wait of the flushing greenlet.

Records handed in are read by the DB thread while other greenlets run: a row may mix values from
before and after a concurrent change, which is harmless as long as the master marks a changed
record dirty again (the next flush then writes its final state).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import starmap
from operator import attrgetter
from typing import Any

import orjson
import peewee

from models.store import Store

# Turns sqlite3 / psycopg2 errors raised by raw cursors into peewee's (IntegrityError, …), as
# peewee's own execute_sql does; peewee's type stubs do not declare it.
_driver_errors: Any = vars(peewee)["__exception_wrapper__"]


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


@dataclass(slots=True)
class BlocklistRecord:
    job_id: int
    worker: str
    failures: int


# Column lists, in TaskRecord / JobRecord field order so a fetched row IS the constructor's
# argument list (TaskRecord(*row)) and attrgetter builds a written row in C.
_TASK_COLUMNS = (
    "id", "job_id", "task_index", "frame_start", "frame_end", "status", "worker", "attempt",
    "attempts", "dispatches", "exit_code", "error", "progress", "started", "finished",
)  # fmt: skip
_TASK_MUTABLE = (
    "status", "worker", "attempt", "attempts", "dispatches", "exit_code", "error", "progress",
    "started", "finished",
)  # fmt: skip
_JOB_COLUMNS = (
    "id", "name", "status", "priority", "argv", "frames", "chunk", "tags", "max_attempts",
    "timeout_s", "env", "cwd", "depends_on", "progress_regex", "fail_policy", "created",
    "updated", "tasks_total", "retry_delay_s",
)  # fmt: skip
_JOB_MUTABLE = tuple(c for c in _JOB_COLUMNS if c not in ("id", "created"))
_JOB_JSON = tuple(_JOB_COLUMNS.index(c) for c in ("argv", "tags", "env", "depends_on"))
_BLOCKLIST_COLUMNS = ("job_id", "worker", "failures")

_task_row = attrgetter(*(("index" if c == "task_index" else c) for c in _TASK_COLUMNS))
_task_update_row = attrgetter(*_TASK_MUTABLE, "id")  # SQLite: SET … WHERE id = last
_task_staging_row = attrgetter("id", *_TASK_MUTABLE)  # PostgreSQL: id first, like the COPY


class _CopyNull:
    """NULL in a CSV COPY: csv's QUOTE_NONNUMERIC writes it bare because it looks numeric.

    COPY … (FORMAT csv, NULL '\\N') reads a bare \\N as NULL and a quoted one as text, and
    QUOTE_NONNUMERIC quotes every str: so None and "" and "\\N" all stay distinct, while the
    rows are still encoded by the csv module in C (Python 3.11's csv writes None as a quoted
    "", indistinguishable from an empty string).
    """

    __slots__ = ()

    def __float__(self) -> float:  # makes PyNumber_Check true; never called
        return 0.0

    def __str__(self) -> str:
        return "\\N"


_NULL = _CopyNull()
_COPY_OPTIONS = "(FORMAT csv, NULL '\\N')"


def _csv_buffer(rows: Iterable[tuple[Any, ...]]) -> io.StringIO:
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_NONNUMERIC).writerows(
        tuple(_NULL if v is None else v for v in row) for row in rows
    )
    buf.seek(0)
    return buf


class JobStore:
    """Job-farm tables on top of a Store: bulk writes and whole-table loads, in its DB thread."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pg = store.backend == "postgresql"
        p = store.db.param
        task_cols = ", ".join(_TASK_COLUMNS)
        job_cols = ", ".join(_JOB_COLUMNS)
        self._select_jobs = f'SELECT {job_cols} FROM "job" ORDER BY id'
        self._select_tasks = f'SELECT {task_cols} FROM "task" ORDER BY job_id, task_index'
        # One fixed statement whatever the number of jobs: a bound list, not a built IN (…).
        where = "job_id = ANY(%s)" if self._pg else "job_id IN (SELECT value FROM json_each(?))"
        self._select_job_tasks = (
            f'SELECT {task_cols} FROM "task" WHERE {where} ORDER BY job_id, task_index'
        )
        self._insert_job = f'INSERT INTO "job" ({job_cols}) VALUES ({_marks(p, _JOB_COLUMNS)})'
        self._insert_task = f'INSERT INTO "task" ({task_cols}) VALUES ({_marks(p, _TASK_COLUMNS)})'
        self._update_job = (
            'UPDATE "job" SET ' + ", ".join(f"{c} = {p}" for c in _JOB_MUTABLE) + f" WHERE id = {p}"
        )
        self._update_task = (
            'UPDATE "task" SET '
            + ", ".join(f"{c} = {p}" for c in _TASK_MUTABLE)
            + f" WHERE id = {p}"
        )
        bl_cols = ", ".join(_BLOCKLIST_COLUMNS)
        self._upsert_blocklist = (
            f'INSERT INTO "job_blocklist" ({bl_cols}) VALUES '
            + ("%s" if self._pg else f"({_marks(p, _BLOCKLIST_COLUMNS)})")
            + " ON CONFLICT (job_id, worker) DO UPDATE SET failures = excluded.failures"
        )
        self._max_ids = (
            'SELECT (SELECT COALESCE(MAX(id), 0) FROM "job"), '
            '(SELECT COALESCE(MAX(id), 0) FROM "task")'
        )
        self._delete = tuple(
            f'DELETE FROM "{table}" WHERE {col} = {p}'
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

    def load_jobs(self) -> list[JobRecord]:
        """Every job, ordered by id."""
        return self._store.call(self._do_load_jobs)

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
        db = self._store.db
        job_row = _job_row(job)
        if self._pg:
            # synchronous_commit is on by default: the commit waits for the WAL flush.
            with db.atomic(), _driver_errors:
                cursor = db.cursor()
                cursor.execute(self._insert_job, job_row)
                if tasks:
                    buf = _csv_buffer(map(_task_row, tasks))
                    cursor.copy_expert(
                        f'COPY "task" ({", ".join(_TASK_COLUMNS)}) FROM STDIN {_COPY_OPTIONS}', buf
                    )
            return
        # SQLite runs with synchronous=FULL (models/db.py): the commit syncs the WAL.
        with db.atomic(), _driver_errors:
            cursor = db.cursor()
            cursor.execute(self._insert_job, job_row)
            cursor.executemany(self._insert_task, map(_task_row, tasks))

    def _do_save_changes(
        self,
        jobs: Sequence[JobRecord],
        tasks: Sequence[TaskRecord],
        blocklist: Sequence[BlocklistRecord],
    ) -> None:
        db = self._store.db
        # ON CONFLICT DO UPDATE refuses to touch one row twice in a statement: last one wins.
        bl_rows = list(
            {(b.job_id, b.worker): (b.job_id, b.worker, b.failures) for b in blocklist}.values()
        )
        with db.atomic(), _driver_errors:
            cursor = db.cursor()
            if self._pg:
                if jobs:
                    rows = [(j.id, *_job_mutable_row(j)) for j in jobs]
                    _pg_update_from_copy(cursor, "job", ("id", *_JOB_MUTABLE), rows)
                if tasks:
                    # UPDATE … FROM picks an arbitrary row when an id repeats: keep the last.
                    rows = list({t.id: _task_staging_row(t) for t in tasks}.values())
                    _pg_update_from_copy(cursor, "task", ("id", *_TASK_MUTABLE), rows)
                if bl_rows:
                    from psycopg2.extras import execute_values

                    execute_values(cursor, self._upsert_blocklist, bl_rows, page_size=1000)
            else:
                if jobs:
                    job_rows = [(*_job_mutable_row(j), j.id) for j in jobs]
                    cursor.executemany(self._update_job, job_rows)
                if tasks:
                    cursor.executemany(self._update_task, map(_task_update_row, tasks))
                if bl_rows:
                    cursor.executemany(self._upsert_blocklist, bl_rows)

    def _do_load_jobs(self) -> list[JobRecord]:
        loads = orjson.loads
        jobs = []
        for row in self._store.db.execute_sql(self._select_jobs).fetchall():
            values = list(row)  # in _JOB_COLUMNS order, which is JobRecord's field order
            for i in _JOB_JSON:
                values[i] = loads(values[i])
            jobs.append(JobRecord(*values))
        return jobs

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
        sql = 'SELECT job_id, worker, failures FROM "job_blocklist" ORDER BY job_id, worker'
        return list(starmap(BlocklistRecord, self._store.db.execute_sql(sql).fetchall()))

    def _do_delete_job(self, job_id: int) -> None:
        db = self._store.db
        with db.atomic():
            for sql in self._delete:
                db.execute_sql(sql, (job_id,))


def _marks(param: str, columns: Sequence[str]) -> str:
    return ", ".join([param] * len(columns))


def _job_row(j: JobRecord) -> tuple[Any, ...]:
    """The job as a row in _JOB_COLUMNS order, JSON columns serialised (in the DB thread)."""
    dumps = orjson.dumps
    return (
        j.id, j.name, j.status, j.priority, dumps(j.argv).decode(), j.frames, j.chunk,
        dumps(j.tags).decode(), j.max_attempts, j.timeout_s, dumps(j.env).decode(), j.cwd,
        dumps(j.depends_on).decode(), j.progress_regex, j.fail_policy, j.created, j.updated,
        j.tasks_total, j.retry_delay_s,
    )  # fmt: skip


_CREATED = _JOB_COLUMNS.index("created")


def _job_mutable_row(j: JobRecord) -> tuple[Any, ...]:
    """The job's _JOB_MUTABLE values: its row without id and created."""
    row = _job_row(j)
    return row[1:_CREATED] + row[_CREATED + 1 :]


def _pg_update_from_copy(
    cursor: Any, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """UPDATE `table` from `rows` (id first) via COPY into a temp table and one UPDATE … FROM.

    COPY beats execute_values here: the latter formats every value in Python (mogrify).
    """
    staging = f"{table}_changes"
    cols = ", ".join(columns)
    # CREATE … AS SELECT … WITH NO DATA takes the column types but not the NOT NULL constraints.
    cursor.execute(
        f'CREATE TEMP TABLE {staging} ON COMMIT DROP AS SELECT {cols} FROM "{table}" WITH NO DATA'
    )
    cursor.copy_expert(f"COPY {staging} ({cols}) FROM STDIN {_COPY_OPTIONS}", _csv_buffer(rows))
    sets = ", ".join(f"{c} = s.{c}" for c in columns if c != "id")
    cursor.execute(f'UPDATE "{table}" AS t SET {sets} FROM {staging} AS s WHERE t.id = s.id')
    # Dropped now, not only at commit, in case the caller wraps us in a larger transaction.
    cursor.execute(f"DROP TABLE {staging}")
