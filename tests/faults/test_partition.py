"""A worker partitioned from the master (its traffic dropped by a proxy, no connection closed):
the master requeues its task after the heartbeat timeout and another worker runs it; when the
partition heals, the worker reconnects and its late result is refused as stale."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.harness import Farm, ledger_argv
from tests.faults.proxy import PartitionProxy
from tests.support import Program, wait_for

pytestmark = pytest.mark.timeout(60)

HEARTBEAT_S = 0.5
TIMEOUT_S = 3 * HEARTBEAT_S
REQUEUE_SLACK_S = 1.5


def task_of(farm: Farm, job_id: int) -> dict:
    with farm.api() as api:
        return api.call("tasks.list", job_id=job_id)["tasks"][0]


def test_a_partitioned_worker_loses_its_task_and_its_late_result_is_stale(tmp_path: Path) -> None:
    farm = Farm(tmp_path, "--heartbeat-s", str(HEARTBEAT_S))
    proxy = None
    try:
        farm.start_master()
        proxy = PartitionProxy(farm.port)
        behind = Program(
            "worker.py",
            "--master",
            f"127.0.0.1:{proxy.port}",
            "--name",
            "far",
            "--work-dir",
            str(tmp_path / "work" / "far"),
            "--log-level",
            "info",
            log_path=tmp_path / "far.log",
        )
        farm.workers.append(behind)
        farm.wait_online(["far"])
        with farm.api() as api:
            argv = ledger_argv(farm.ledger, 1.0)
            job_id = api.call("jobs.submit", name="p", argv=argv)["job_id"]
        first = wait_for(
            lambda: (task := task_of(farm, job_id))["status"] == "running" and task,
            what="the task running behind the proxy",
        )
        farm.start_worker("near")
        farm.wait_online(["far", "near"])
        proxy.cut()
        cut_at = time.monotonic()
        moved = wait_for(
            lambda: (task := task_of(farm, job_id))["worker"] == "near" and task,
            timeout=10,
            what="the task requeued to the worker the master can reach",
        )
        took = time.monotonic() - cut_at
        assert took < TIMEOUT_S + REQUEUE_SLACK_S, f"requeued after {took:.1f}s"
        assert moved["attempts"] == 0
        wait_for(lambda: task_of(farm, job_id)["status"] == "completed", what="completed")
        # The far worker, unaware, heartbeats (and reports) into the void meanwhile.
        assert proxy.dropped_bytes > 0
        proxy.heal()
        wait_for(
            lambda: (
                f"stale task.finished for attempt {first['attempt']} from far refused"
                in farm.master_log.read_text()
            ),
            timeout=30,
            what="the far worker's late result refused",
        )
        farm.wait_online(["far", "near"])
        done = task_of(farm, job_id)
        assert (done["status"], done["worker"], done["attempt"]) == (
            "completed",
            "near",
            moved["attempt"],
        )
    finally:
        if proxy is not None:
            proxy.close()
        farm.stop()
