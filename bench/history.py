"""Bench: a master over a long history: 1,000,000 finished tasks stored, a few live jobs.

    python bench/history.py [--tasks 1000000] [--tasks-per-job 100] [--db URL] [--calls 100]
                            [--code DIR]

The finished jobs are bulk-inserted straight into the database (JobStore.insert_job: COPY on
PostgreSQL, executemany on SQLite), then a real master starts on it. Prints the master's start
time and RSS (finished jobs stay on disk: RSS follows the live work, not the history) and the
p50/p95 of `jobs.list` with and without status filters and pages, `jobs.get` and `tasks.list`
of finished jobs, over real TCP. Targets: `jobs.list` p95 < 50 ms on both databases.
`--code DIR` starts the master (and builds the database) from another checkout, e.g. the
code before finished jobs left memory, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _code_root() -> Path:
    """--code DIR, read before the imports below so that they come from that checkout."""
    if "--code" in sys.argv:
        return Path(sys.argv[sys.argv.index("--code") + 1]).resolve()
    return Path(__file__).resolve().parent.parent


CODE = _code_root()
sys.path.insert(0, str(CODE))
sys.path.insert(1, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402
from benchlib import BenchError, RpcClient, percentile, start_master, stop_all  # noqa: E402

sys.path.insert(0, str(CODE))  # benchlib put this checkout first: the models come from CODE
from models.db import redact_url  # noqa: E402
from models.jobstore import JobRecord, JobStore, TaskRecord  # noqa: E402
from models.store import Store  # noqa: E402

LIST_P95_TARGET_MS = 50.0
LIVE_JOBS = 20
FINISHED = ("completed", "completed", "completed", "completed", "failed", "canceled")


def build_history(url: str | None, data_dir: Path, tasks: int, per_job: int) -> dict[str, Any]:
    store = Store(url, data_dir)
    store.open()
    jobstore = JobStore(store)
    now = time.time()
    began = time.perf_counter()
    task_id = 1
    jobs = tasks // per_job
    try:
        for job_id in range(1, jobs + LIVE_JOBS + 1):
            live = job_id > jobs
            status = "queued" if live else FINISHED[job_id % len(FINISHED)]
            created = now - 86400.0 * 30 + job_id * 2.0
            job = JobRecord(
                id=job_id, name=f"shot-{job_id:06d}", status=status, priority=50,
                argv=["render", "--frame", "{frame}"], frames=f"1-{per_job}", chunk=1,
                tags=["linux"], max_attempts=3, timeout_s=None, env={}, cwd=None,
                depends_on=[], progress_regex=None, fail_policy="finish", created=created,
                updated=created + 60.0, tasks_total=per_job,
            )  # fmt: skip
            records = []
            for index in range(per_job):
                done = not live
                # A failed job: its first task failed; a canceled one: its second half.
                task_status = status
                if status == "failed":
                    task_status = "failed" if index == 0 else "completed"
                elif status == "canceled":
                    task_status = "canceled" if index >= per_job // 2 else "completed"
                records.append(
                    TaskRecord(
                        id=task_id,
                        job_id=job_id,
                        index=index,
                        frame_start=index + 1,
                        frame_end=index + 1,
                        status=task_status if done else "queued",
                        worker="w-001" if done else None,
                        attempt=f"{task_id}.1.x" if done else None,
                        attempts=0,
                        dispatches=1 if done else 0,
                        exit_code=0 if done else None,
                        error=None,
                        progress=100.0 if done else 0.0,
                        started=created + 1.0 if done else None,
                        finished=created + 30.0 if done else None,
                    )
                )
                task_id += 1
            if not live and hasattr(job, "task_counts"):  # as the master stores them (v14)
                counts: dict[str, int] = {}
                for task in records:
                    counts[task.status] = counts.get(task.status, 0) + 1
                job.task_counts = counts
            jobstore.insert_job(job, records)
        if store.backend == "postgresql":
            # Fresh planner statistics, as autovacuum takes them after a change this large.
            store.call(store.db.execute_sql, "ANALYZE")
    finally:
        store.close()
    return {"jobs": jobs, "tasks": jobs * per_job, "insert_s": time.perf_counter() - began}


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def timed(client: RpcClient, method: str, params: dict[str, Any], calls: int) -> dict[str, float]:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        client.call(method, params)
        times.append((time.perf_counter() - t0) * 1000.0)
    return {"p50_ms": round(percentile(times, 0.5), 2), "p95_ms": round(percentile(times, 0.95), 2)}


def measure(url: str | None, data_dir: Path, calls: int, jobs: int) -> dict[str, Any]:
    started: list[Any] = []
    flags = ["--db", url] if url else []
    try:
        t0 = time.perf_counter()
        master, host, port = start_master(data_dir, started, *flags, script=CODE / "master.py")
        client = RpcClient(host, port)
        start_s = time.perf_counter() - t0
        rss = rss_kb(master.pid)
        lists = {
            "jobs.list": {},
            "jobs.list status=completed": {"status": "completed"},
            "jobs.list status=failed": {"status": "failed"},
            "jobs.list status=canceled offset=1000": {"status": "canceled", "offset": 1000},
            "jobs.list status=queued": {"status": "queued"},
            "jobs.list offset=5000": {"offset": 5000},
        }
        figures = {
            name: timed(client, "jobs.list", params, calls) for name, params in lists.items()
        }
        some = jobs // 2
        figures["jobs.get (finished)"] = timed(client, "jobs.get", {"job_id": some}, calls)
        figures["tasks.list (finished, 100)"] = timed(
            client, "tasks.list", {"job_id": some, "limit": 100}, calls
        )
        total = client.call("jobs.list", {"status": "completed"})["total"]
        client.close()
    finally:
        stop_all(started)
    worst = max(v["p95_ms"] for k, v in figures.items() if k.startswith("jobs.list"))
    return {
        "start_s": round(start_s, 2),
        "rss_mb": round(rss / 1024, 1),
        "completed_listed": total,
        "calls": figures,
        "jobs_list_worst_p95_ms": worst,
        "ok": worst < LIST_P95_TARGET_MS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--tasks-per-job", type=int, default=100)
    parser.add_argument("--db", default=None, help="database URL (default: SQLite in data dir)")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--calls", type=int, default=100, help="calls per measured request")
    parser.add_argument(
        "--code", type=Path, default=None, help="the checkout to run (default: this)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="farmhand-history-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        built = build_history(args.db, data_dir, args.tasks, args.tasks_per_job)
        try:
            result = measure(args.db, data_dir, args.calls, built["jobs"])
        except BenchError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
    db = redact_url(args.db) if args.db else "sqlite (data dir)"
    print(f"database         {db}   code {CODE}")
    print(f"history          {built['tasks']:,} finished tasks in {built['jobs']:,} jobs "
          f"(+{LIVE_JOBS} live jobs), inserted in {built['insert_s']:.1f} s")  # fmt: skip
    print(f"master start     {result['start_s']:.2f} s to its first answer")
    print(f"master RSS       {result['rss_mb']:.1f} MB after start")
    for name, figure in result["calls"].items():
        print(f"{name:38s} p50 {figure['p50_ms']:7.2f} ms   p95 {figure['p95_ms']:7.2f} ms")
    verdict = "OK" if result["ok"] else "MISSED"
    print(f"jobs.list worst p95 {result['jobs_list_worst_p95_ms']:.2f} ms "
          f"(target < {LIST_P95_TARGET_MS:.0f} ms: {verdict})")  # fmt: skip
    print(orjson.dumps({"db": db, **built, **result}).decode())
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
