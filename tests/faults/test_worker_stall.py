"""SIGSTOP of a worker: the master requeues its task within the heartbeat timeout, another
worker runs it, and the stopped worker's late result is refused as stale when it wakes up."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.faults.harness import Farm, ledger_argv, read_ledger
from tests.support import wait_for

pytestmark = pytest.mark.timeout(60)

HEARTBEAT_S = 0.5
TIMEOUT_S = 3 * HEARTBEAT_S
# The reaper sweeps every half heartbeat; the rest is the scheduling of three processes.
REQUEUE_SLACK_S = 1.5


def task_of(farm: Farm, job_id: int) -> dict:
    with farm.api() as api:
        return api.call("tasks.list", job_id=job_id)["tasks"][0]


def test_a_stopped_worker_loses_its_task_in_time_and_its_late_result_is_stale(
    tmp_path: Path,
) -> None:
    farm = Farm(tmp_path, "--heartbeat-s", str(HEARTBEAT_S))
    try:
        farm.start_master()
        w1 = farm.start_worker("w1")
        farm.wait_online(["w1"])
        with farm.api() as api:
            job_id = api.call("jobs.submit", name="s", argv=ledger_argv(farm.ledger, 1.0))["job_id"]
        first = wait_for(
            lambda: (task := task_of(farm, job_id))["status"] == "running" and task,
            what="the task running on w1",
        )
        farm.start_worker("w2")
        farm.wait_online(["w1", "w2"])
        w1.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            moved = wait_for(
                lambda: (task := task_of(farm, job_id))["worker"] == "w2" and task,
                timeout=10,
                what="the task requeued to w2",
            )
            took = time.monotonic() - stopped
            assert took < TIMEOUT_S + REQUEUE_SLACK_S, f"requeued after {took:.1f}s"
            assert moved["attempt"] != first["attempt"]
            assert moved["attempts"] == 0  # a lost worker costs the task no attempt
            wait_for(lambda: task_of(farm, job_id)["status"] == "completed", what="completed on w2")
        finally:
            w1.signal(signal.SIGCONT)
        # w1 wakes, reconnects and delivers the result of the attempt it was running: refused.
        wait_for(
            lambda: (
                f"stale task.finished for attempt {first['attempt']} from w1 refused"
                in farm.master_log.read_text()
            ),
            timeout=20,
            what="w1's late result refused",
        )
        farm.wait_online(["w1", "w2"])
        done = task_of(farm, job_id)
        assert (done["status"], done["worker"], done["attempt"]) == (
            "completed",
            "w2",
            moved["attempt"],
        )
        # Both ran it (w1 could not be told while stopped): the result is recorded once.
        assert read_ledger(farm.ledger)[(job_id, 0)] == 2
        with farm.api() as api:
            assert api.call("status")["farm"]["tasks_completed_total"] == 1
    finally:
        farm.stop()
