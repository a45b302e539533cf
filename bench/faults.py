"""Bench: kill -9 of the master under load, many rounds, at full size (the CI-sized test is
tests/faults/test_master_crash.py; both run tests/faults/harness.py).

    python bench/faults.py [--rounds 25] [--workers 2] [--slots 4] [--submitters 1]
                           [--tasks-per-job 4] [--pause-s 0.02] [--seed N]

A real master.py (SQLite) on a fixed free port, real worker.py processes, and submitters that
keep calling jobs.submit while the master is killed -9 every 0.4-1.2 s and started again. Each
task appends `JOB TASK PID` to a ledger file when it runs. Afterwards it waits until every
stored job completed and prints: acknowledged submissions, executions, lost (acknowledged tasks
that never ran or whose job is not completed), duplicated executions (ledger lines beyond the
first per task), tasks recovered in flight at restarts (and how many their workers confirmed),
SQLite's integrity_check and the WAL size. A benchmark: exits 0 whatever it finds, 1 on errors.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults.harness import crash_rounds  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25, help="master crashes (default 25)")
    parser.add_argument("--workers", type=int, default=2, help="worker.py processes (default 2)")
    parser.add_argument("--slots", type=int, default=4, help="slots per worker (default 4)")
    parser.add_argument("--submitters", type=int, default=1, help="submitting threads (default 1)")
    parser.add_argument("--tasks-per-job", type=int, default=4, help="default 4")
    parser.add_argument("--pause-s", type=float, default=0.02, help="between submits (0.02)")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    if min(args.rounds, args.workers, args.slots, args.submitters, args.tasks_per_job) < 1:
        parser.error("--rounds, --workers, --slots, --submitters, --tasks-per-job must be >= 1")
    began = time.monotonic()

    def progress(number: int, acked: int) -> None:
        print(f"  crash {number:>3}/{args.rounds}: {acked} submissions acknowledged so far")

    print(
        f"kill -9 of the master x{args.rounds} under load: {args.workers} workers x "
        f"{args.slots} slots, {args.submitters} submitter(s), {args.tasks_per_job} tasks per job"
    )
    try:
        with tempfile.TemporaryDirectory(prefix="farmhand-faults-") as tmp:
            verdict = crash_rounds(
                Path(tmp),
                args.rounds,
                workers=args.workers,
                slots=args.slots,
                submitters=args.submitters,
                tasks_per_job=args.tasks_per_job,
                pause_s=args.pause_s,
                drain_timeout_s=600.0,
                progress=progress,
                seed=args.seed,
            )
    except (AssertionError, OSError) as exc:
        print(f"faults.py: error: {exc}", file=sys.stderr)
        return 1
    print()
    print(f"acknowledged submissions  {verdict.acked_jobs} jobs, {verdict.acked_tasks} tasks")
    print(f"executions (ledger)       {verdict.executions}")
    print(f"lost                      {verdict.lost}")
    print(f"duplicated executions     {verdict.duplicated}")
    print(f"recovered in flight       {verdict.recovered} (confirmed by their workers: "
          f"{verdict.confirmed})")  # fmt: skip
    print(f"integrity_check           {verdict.integrity}")
    print(f"WAL after the last stop   {verdict.wal_bytes} bytes")
    print(f"took                      {time.monotonic() - began:.0f}s")
    print(orjson.dumps({"rounds": args.rounds, **vars(verdict)}).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
