"""SQLite under a crash loop: the master is killed -9 again and again while it writes (job
submissions, operator changes through the journal). After every crash the file passes
`PRAGMA integrity_check`, the WAL stays bounded and every acknowledged submission is there."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from tests.faults.harness import Farm, integrity
from tests.support import RpcClient, RpcFailure

pytestmark = pytest.mark.timeout(120)

CRASHES = 8
# SQLite checkpoints the WAL at 1000 pages (4 MiB) and reuses the file: far below this.
WAL_LIMIT_BYTES = 16 << 20


class Writer(threading.Thread):
    """Submits jobs and changes their priority as fast as the master answers."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.acked: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        rng = random.Random(5)
        api: RpcClient | None = None
        while not self.stop.is_set():
            try:
                if api is None:
                    api = RpcClient(self.port, timeout=5.0)
                job_id = api.call("jobs.submit", name="w", argv=["true"], frames="1-50")["job_id"]
                self.acked.add(job_id)
                if rng.random() < 0.5:  # a write through the journal (group commit)
                    target = rng.choice(sorted(self.acked))
                    api.call("jobs.set_priority", job_id=target, priority=rng.randint(0, 100))
            except (OSError, ConnectionError, RpcFailure, AssertionError):
                if api is not None:
                    api.close()
                    api = None
                self.stop.wait(0.05)


def test_kill_9_in_a_loop_under_writes_leaves_sqlite_intact(tmp_path: Path) -> None:
    rng = random.Random(30)
    farm = Farm(tmp_path)
    farm.start_master()
    writer = Writer(farm.port)
    writer.start()
    wal = farm.db_path.with_name(farm.db_path.name + "-wal")
    wal_sizes = []
    try:
        for _ in range(CRASHES):
            time.sleep(rng.uniform(0.2, 0.6))
            farm.kill_master()
            assert integrity(farm.db_path) == "ok"
            wal_sizes.append(wal.stat().st_size if wal.exists() else 0)
            farm.restart_master()
        writer.stop.set()
        writer.join(timeout=10)
        with farm.api() as api:
            listing = api.call("jobs.list", limit=10_000)
        stored = {job["id"]: job for job in listing["jobs"]}
        # Every acknowledged submission is there with all its tasks.
        missing = [job_id for job_id in writer.acked if job_id not in stored]
        assert missing == []
        assert all(stored[job_id]["tasks_total"] == 50 for job_id in writer.acked)
        assert len(writer.acked) > CRASHES
        assert max(wal_sizes) < WAL_LIMIT_BYTES, wal_sizes
    finally:
        writer.stop.set()
        farm.stop()
    assert integrity(farm.db_path) == "ok"
