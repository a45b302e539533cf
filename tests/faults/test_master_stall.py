"""SIGSTOP of the master (issue 10.5): a stalled master must not declare its workers dead.
Stopped for twice the heartbeat timeout while its workers finish their tasks, it comes back,
reads the heartbeats and results waiting in its sockets, and accepts every result."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.harness import Farm, pause, read_ledger, resume
from tests.support import wait_for

pytestmark = pytest.mark.timeout(90)

HEARTBEAT_S = 0.5
TIMEOUT_S = 3 * HEARTBEAT_S


def test_a_stopped_master_declares_no_worker_dead_and_refuses_no_result(tmp_path: Path) -> None:
    farm = Farm(tmp_path, "--heartbeat-s", str(HEARTBEAT_S))
    try:
        farm.start_master()
        for name in ("w1", "w2"):
            farm.start_worker(name, "--slots", "2")
        farm.wait_online(["w1", "w2"])
        done = tmp_path / "done.txt"
        argv = [
            "sh",
            "-c",
            f"echo {{job}} {{task}} $$ >> '{farm.ledger}'; sleep 0.5; echo x >> '{done}'",
        ]
        with farm.api() as api:
            job_id = api.call("jobs.submit", name="stall", argv=argv, frames="1-4")["job_id"]
            wait_for(
                lambda: api.call("jobs.get", job_id=job_id)["tasks_by_status"]["running"] == 4,
                what="all 4 tasks running",
            )
        assert farm.master is not None
        began = time.monotonic()
        pause(farm.master)
        try:
            # Stopped until the tasks are over and twice the heartbeat timeout has passed.
            wait_for(
                lambda: (
                    done.exists()
                    and len(done.read_text().splitlines()) == 4
                    and time.monotonic() - began > 2 * TIMEOUT_S
                ),
                timeout=30,
                what="the tasks to finish while the master is stopped",
            )
        finally:
            resume(farm.master)
        with farm.api() as api:
            wait_for(
                lambda: api.call("jobs.get", job_id=job_id)["status"] == "completed",
                what="the job completed",
            )
            tasks = api.call("tasks.list", job_id=job_id)["tasks"]
            clients = api.call("clients.list", select="w1 w2")["clients"]
        # Each task was dispatched once and its first result was taken.
        assert [(t["attempts"], t["attempt"].split(".")[1]) for t in tasks] == [(0, "1")] * 4
        assert all(client["online"] for client in clients)
        log = farm.master_log.read_text()
        assert "no heartbeat for" not in log
        assert "stale task.finished" not in log
        assert "did not run for" in log  # the stall was noticed
        assert sorted(read_ledger(farm.ledger).values()) == [1, 1, 1, 1]
    finally:
        farm.stop()
