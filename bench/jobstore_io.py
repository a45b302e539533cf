"""Bench: the job farm's writes through models.jobstore.JobStore, as the master makes them.

    python bench/jobstore_io.py [--tasks 100000] [--batch 500] [--db URL] [--data-dir DIR]

Submits one job with N tasks (insert_job, one transaction), loads them back, then writes N task
changes with save_changes: in flush-sized batches (one transaction each) and in one batch.
Prints a readable block and one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.db import redact_url
from models.jobstore import JobRecord, JobStore, TaskRecord
from models.store import Store

JOB_ID = 1


def make_job(count: int, now: float) -> tuple[JobRecord, list[TaskRecord]]:
    job = JobRecord(
        JOB_ID, "bench", "queued", 50, ["render", "{frames}"], f"1-{count}", 1, ["linux"], 3,
        None, {"A": "1"}, None, [], None, "continue", now, now, count,
    )  # fmt: skip
    tasks = [
        TaskRecord(i, JOB_ID, i - 1, i, i, "queued", None, None, 0, 0, None, None, 0.0, None, None)
        for i in range(1, count + 1)
    ]
    return job, tasks


def timed(fn: object, *args: object) -> float:
    t0 = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - t0


def run(url: str | None, data_dir: Path, count: int, batch: int) -> dict[str, object]:
    store = Store(url, data_dir)
    store.open()
    js = JobStore(store)
    try:
        # Start empty so repeated runs against one database measure the same work.
        for table in ("job_blocklist", "task", "job"):
            store.call(store.db.execute_sql, f'DELETE FROM "{table}"')
        now = time.time()
        job, tasks = make_job(count, now)
        insert_s = timed(js.insert_job, job, tasks)

        t0 = time.perf_counter()
        loaded = js.load_tasks()
        load_s = time.perf_counter() - t0
        assert len(loaded) == count

        # A flush's worth of transitions: dispatched to a worker, running, with progress.
        running = [
            dataclasses.replace(
                t,
                status="running",
                worker=f"w-{t.id % 500:03d}",
                attempt=f"a{t.id}-1",
                dispatches=1,
                progress=12.5,
                started=now + 1.0,
            )
            for t in loaded
        ]
        t0 = time.perf_counter()
        for i in range(0, count, batch):
            js.save_changes([], running[i : i + batch], [])
        batched_s = time.perf_counter() - t0

        done = [
            dataclasses.replace(t, status="completed", exit_code=0, progress=100.0, finished=now)
            for t in running
        ]
        one_s = timed(js.save_changes, [job], done, [])
        check = js.load_tasks([JOB_ID])
        assert check[-1] == done[-1] and check[0] == done[0]
    finally:
        store.close()
    return {
        "backend": store.backend,
        "db": store.description if url is None else redact_url(url),
        "tasks": count,
        "batch": batch,
        "insert_s": round(insert_s, 4),
        "load_s": round(load_s, 4),
        "batched_save_s": round(batched_s, 4),
        "one_save_s": round(one_s, 4),
        "insert_rows_per_s": round(count / insert_s),
        "load_rows_per_s": round(count / load_s),
        "batched_rows_per_s": round(count / batched_s),
        "one_rows_per_s": round(count / one_s),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500, help="tasks per flush")
    parser.add_argument("--db", default=None, help="database URL (default: SQLite in data dir)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temp dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="farmhand-bench-") as tmp:
        r = run(args.db, args.data_dir or Path(tmp), args.tasks, args.batch)
    print(f"backend        {r['backend']}  ({r['db']})")
    print(f"tasks          {r['tasks']:,}")
    print(f"insert_job     {r['insert_s']:.3f} s  {r['insert_rows_per_s']:>10,} rows/s")
    print(f"load_tasks     {r['load_s']:.3f} s  {r['load_rows_per_s']:>10,} rows/s")
    print(
        f"save, batches  {r['batched_save_s']:.3f} s  {r['batched_rows_per_s']:>10,} rows/s"
        f"  ({r['batch']} tasks per transaction)"
    )
    print(f"save, one      {r['one_save_s']:.3f} s  {r['one_rows_per_s']:>10,} rows/s")
    print(orjson.dumps(r).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
