"""Job-farm storage contract tests, written once and run on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from models import migrations
from models.db import database_from_url
from models.jobstore import BlocklistRecord, JobRecord, JobStore, TaskRecord
from models.schema import Job, JobBlocklist, Task
from models.store import ClientRecord, Store


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(database_url, tmp_path)
    s.open()
    yield s
    s.close()


@pytest.fixture
def jobs(store: Store) -> JobStore:
    return JobStore(store)


def job(id_: int, **changes: object) -> JobRecord:
    record = JobRecord(
        id=id_,
        name=f"render-{id_}",
        status="queued",
        priority=50,
        argv=["blender", "-b", "scene.blend", "-f", "{frame}"],
        frames="1-250",
        chunk=5,
        tags=["linux", "gpu"],
        max_attempts=3,
        timeout_s=3600.5,
        env={"OCIO": "/etc/ocio.cfg"},
        cwd="/srv/shots",
        depends_on=[],
        progress_regex=r"Fra:(\d+)",
        fail_policy="continue",
        created=1_700_000_000.125,
        updated=1_700_000_000.125,
        tasks_total=3,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def task(id_: int, job_id: int, index: int, **changes: object) -> TaskRecord:
    record = TaskRecord(
        id=id_,
        job_id=job_id,
        index=index,
        frame_start=1 + 5 * index,
        frame_end=5 + 5 * index,
        status="queued",
        worker=None,
        attempt=None,
        attempts=0,
        dispatches=0,
        exit_code=None,
        error=None,
        progress=0.0,
        started=None,
        finished=None,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def tasks_of(job_id: int, first_id: int, count: int) -> list[TaskRecord]:
    return [task(first_id + i, job_id, i) for i in range(count)]


# -- migrations --------------------------------------------------------------------------------


def test_fresh_database_has_the_job_tables_matching_the_models(store: Store) -> None:
    assert migrations.latest_version() >= 2
    for model in (Job, Task, JobBlocklist):
        table = model._meta.table_name
        columns = {c.name for c in store.call(store.db.get_columns, table)}
        assert columns == {f.column_name for f in model._meta.sorted_fields}, table
    indexes = {i.name: i for i in store.call(store.db.get_indexes, "task")}
    unique = [i for i in indexes.values() if i.unique and i.columns == ["job_id", "task_index"]]
    assert unique, indexes


def test_upgrade_from_version_1_keeps_clients(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Build a version-1 database with migration 1 alone, as a farmhand of that version did.
    db = database_from_url(database_url, tmp_path)
    db.connect()
    try:
        with monkeypatch.context() as m:
            m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:1])
            assert migrations.migrate(db) == 1
        assert not db.table_exists("job")
        db.execute_sql(  # type: ignore[no-untyped-call]
            "INSERT INTO client (id, name, role, host, enabled, tags, slots, first_seen, "
            "last_seen, info) VALUES (7, 'old-worker', 'worker', 'h', true, '[\"a\"]', 2, 1.5, "
            "2.5, '{}')"
        )
    finally:
        db.close()

    s = Store(database_url, tmp_path)
    assert s.open() == migrations.latest_version()
    try:
        assert s.load_clients() == [
            ClientRecord(7, "old-worker", "worker", "h", True, ["a"], 2, 1.5, 2.5, {})
        ]
        js = JobStore(s)
        js.insert_job(job(1), tasks_of(1, 1, 3))
        assert js.max_ids() == (1, 3)
    finally:
        s.close()


# -- insert and load ---------------------------------------------------------------------------


def test_empty_tables(jobs: JobStore) -> None:
    assert jobs.max_ids() == (0, 0)
    assert jobs.load_jobs() == []
    assert jobs.load_tasks() == []
    assert jobs.load_tasks([1, 2]) == []
    assert jobs.load_blocklist() == []


def test_round_trip_of_every_field(jobs: JobStore) -> None:
    plain = job(1)
    odd = job(
        2,
        name="Ψ-rendu-été-🚀, \"quoted\" and 'single'",
        status="active",
        priority=0,
        argv=["sh", "-c", "echo a,b\tc\nd \\N", "", "\\N"],
        frames="",
        chunk=1,
        tags=[],
        max_attempts=1,
        timeout_s=None,
        env={"LANG": "fr_FR.UTF-8", "EMPTY": "", "ÜNÏ": "ç\r\n"},
        cwd=None,
        depends_on=[1],
        progress_regex=None,
        fail_policy="stop",
        created=0.1 + 0.2,
        updated=1e-300,
        tasks_total=2,
        outputs='render/{frame}_*.png, "é"',
    )
    first = tasks_of(1, 1, 3)
    second = [
        task(10, 2, 0, frame_start=None, frame_end=None),
        task(
            11,
            2,
            1,
            status="failed",
            worker="render-ü-01",
            attempt="a-11-2",
            attempts=2,
            dispatches=3,
            exit_code=-9,
            error='killed:\tsignal 9\n"OOM", \\N',
            progress=99.75,
            started=1_700_000_001.5,
            finished=1_700_000_002.25,
        ),
    ]
    jobs.insert_job(plain, first)
    jobs.insert_job(odd, second)
    assert jobs.load_jobs() == [plain, odd]
    assert jobs.load_tasks() == first + second
    assert jobs.max_ids() == (2, 11)
    # Empty strings stay empty strings, not NULL, and "\N" stays text.
    loaded = jobs.load_tasks([2])[1]
    assert loaded.error is not None and loaded.error.endswith("\\N")
    assert jobs.load_jobs()[1].frames == ""


def test_insert_job_without_tasks(jobs: JobStore) -> None:
    jobs.insert_job(job(4, tasks_total=0), [])
    assert jobs.load_jobs() == [job(4, tasks_total=0)]
    assert jobs.max_ids() == (4, 0)


def test_insert_job_is_atomic(jobs: JobStore) -> None:
    jobs.insert_job(job(1), tasks_of(1, 1, 3))
    clash = [*tasks_of(2, 100, 50), task(3, 2, 50)]  # task id 3 exists already
    with pytest.raises(peewee.IntegrityError):
        jobs.insert_job(job(2), clash)
    duplicate_in_batch = [task(200, 3, 0), task(200, 3, 1)]
    with pytest.raises(peewee.IntegrityError):
        jobs.insert_job(job(3), duplicate_in_batch)
    assert [j.id for j in jobs.load_jobs()] == [1]
    assert jobs.load_tasks() == tasks_of(1, 1, 3)
    jobs.insert_job(job(2), tasks_of(2, 100, 2))  # still usable after the failures
    assert jobs.max_ids() == (2, 101)


def test_duplicate_job_id_or_task_index_is_refused(jobs: JobStore) -> None:
    jobs.insert_job(job(1), tasks_of(1, 1, 2))
    with pytest.raises(peewee.IntegrityError):
        jobs.insert_job(job(1), tasks_of(1, 10, 1))
    with pytest.raises(peewee.IntegrityError):
        jobs.insert_job(job(2), [task(20, 2, 0), task(21, 2, 0)])  # same index twice
    assert jobs.max_ids() == (1, 2)


def test_load_tasks_filtered_by_job_and_ordered(jobs: JobStore) -> None:
    # Task ids deliberately out of index order: the order is (job_id, index), not id.
    jobs.insert_job(job(5), [task(52, 5, 1), task(51, 5, 0)])
    jobs.insert_job(job(3), [task(31, 3, 0), task(30, 3, 1)])
    jobs.insert_job(job(9), [task(90, 9, 0)])
    assert [t.id for t in jobs.load_tasks()] == [31, 30, 51, 52, 90]
    assert [t.id for t in jobs.load_tasks([9, 3])] == [31, 30, 90]
    assert [t.id for t in jobs.load_tasks((5,))] == [51, 52]
    assert jobs.load_tasks([42]) == []
    assert jobs.load_tasks([]) == []
    assert [j.id for j in jobs.load_jobs()] == [3, 5, 9]


# -- save_changes ------------------------------------------------------------------------------


def test_save_changes_updates_exactly_the_given_rows(jobs: JobStore) -> None:
    jobs.insert_job(job(1), tasks_of(1, 1, 4))
    jobs.insert_job(job(2), tasks_of(2, 10, 2))
    changed_job = job(
        1,
        name="renamed ✓",
        status="active",
        priority=90,
        argv=["new"],
        frames="1-3",
        chunk=2,
        tags=["x"],
        max_attempts=5,
        timeout_s=None,
        env={},
        cwd=None,
        depends_on=[2, 3],
        progress_regex=None,
        fail_policy="stop",
        created=123.0,  # created is not written by save_changes
        updated=1_700_000_050.75,
        tasks_total=4,
    )
    running = task(
        2,
        1,
        1,
        status="running",
        worker="w-01",
        attempt="att-2-1",
        dispatches=1,
        progress=12.5,
        started=1_700_000_010.0,
    )
    failed = task(
        11,
        2,
        1,
        status="failed",
        worker="w-02",
        attempt="att-11-1",
        attempts=1,
        dispatches=1,
        exit_code=1,
        error="",
        progress=3.0,
        started=1.0,
        finished=2.0,
    )
    jobs.save_changes([changed_job], [running, failed], [BlocklistRecord(2, "w-02", 1)])

    assert jobs.load_jobs() == [dataclasses.replace(changed_job, created=job(1).created), job(2)]
    expected = tasks_of(1, 1, 4)
    expected[1] = running
    expected_2 = tasks_of(2, 10, 2)
    expected_2[1] = failed
    assert jobs.load_tasks() == expected + expected_2
    assert jobs.load_blocklist() == [BlocklistRecord(2, "w-02", 1)]

    # A later flush: the task goes back to queued (NULLs again), blocklist upserted and added.
    requeued = dataclasses.replace(failed, status="queued", worker=None, attempt=None, error=None)
    jobs.save_changes(
        [],
        [requeued],
        [BlocklistRecord(2, "w-02", 2), BlocklistRecord(1, "w-01", 1), BlocklistRecord(2, "a", 5)],
    )
    assert jobs.load_tasks([2]) == [expected_2[0], requeued]
    assert jobs.load_blocklist() == [
        BlocklistRecord(1, "w-01", 1),
        BlocklistRecord(2, "a", 5),
        BlocklistRecord(2, "w-02", 2),
    ]


def test_save_changes_last_record_of_a_row_wins(jobs: JobStore) -> None:
    jobs.insert_job(job(1), tasks_of(1, 1, 1))
    first = task(1, 1, 0, status="running", worker="w")
    last = task(1, 1, 0, status="completed", worker="w", progress=100.0)
    jobs.save_changes([], [first, last], [BlocklistRecord(1, "w", 1), BlocklistRecord(1, "w", 2)])
    assert jobs.load_tasks() == [last]
    assert jobs.load_blocklist() == [BlocklistRecord(1, "w", 2)]


def test_save_changes_of_nothing_is_a_no_op(jobs: JobStore) -> None:
    jobs.insert_job(job(1), tasks_of(1, 1, 2))
    jobs.save_changes([], [], [])
    assert jobs.load_jobs() == [job(1)]
    assert jobs.load_tasks() == tasks_of(1, 1, 2)


def test_save_changes_is_atomic(jobs: JobStore) -> None:
    jobs.insert_job(job(1), tasks_of(1, 1, 2))
    # The blocklist is written last and a NULL worker breaks its primary key: the job and task
    # updates already made in that transaction must be rolled back with it.
    with pytest.raises(peewee.IntegrityError):
        jobs.save_changes(
            [job(1, status="active")],
            [task(1, 1, 0, status="running")],
            [BlocklistRecord(1, None, 1)],  # type: ignore[arg-type]
        )
    assert jobs.load_jobs() == [job(1)]
    assert jobs.load_tasks() == tasks_of(1, 1, 2)
    assert jobs.load_blocklist() == []


# -- delete and reopen -------------------------------------------------------------------------


def test_delete_job_removes_its_tasks_and_blocklist(jobs: JobStore) -> None:
    jobs.insert_job(job(1), tasks_of(1, 1, 3))
    jobs.insert_job(job(2), tasks_of(2, 10, 2))
    jobs.save_changes([], [], [BlocklistRecord(1, "w", 1), BlocklistRecord(2, "w", 3)])
    jobs.delete_job(1)
    jobs.delete_job(42)  # unknown: nothing to do
    assert [j.id for j in jobs.load_jobs()] == [2]
    assert jobs.load_tasks() == tasks_of(2, 10, 2)
    assert jobs.load_blocklist() == [BlocklistRecord(2, "w", 3)]
    assert jobs.max_ids() == (2, 11)


def test_data_survives_reopening(store: Store, database_url: str, tmp_path: Path) -> None:
    js = JobStore(store)
    js.insert_job(job(1), tasks_of(1, 1, 3))
    done = task(3, 1, 2, status="completed", worker="w", attempt="a", dispatches=1, progress=100.0)
    js.save_changes([job(1, status="active")], [done], [BlocklistRecord(1, "v", 1)])
    store.close()
    again = Store(database_url, tmp_path)
    again.open()
    try:
        js = JobStore(again)
        assert js.load_jobs() == [job(1, status="active")]
        assert js.load_tasks() == [*tasks_of(1, 1, 2), done]
        assert js.load_blocklist() == [BlocklistRecord(1, "v", 1)]
        assert js.max_ids() == (1, 3)
    finally:
        again.close()


def test_big_job_round_trips(jobs: JobStore) -> None:
    many = tasks_of(1, 1, 20_000)
    jobs.insert_job(job(1, tasks_total=20_000), many)
    changed = [dataclasses.replace(t, status="completed", progress=100.0) for t in many[::2]]
    jobs.save_changes([], changed, [])
    loaded = jobs.load_tasks([1])
    assert len(loaded) == 20_000
    assert loaded[::2] == changed
    assert loaded[1::2] == many[1::2]
