"""An order that kills its connection (issue 10.4, dispatcher side): a worker that disconnects
before answering `task.run` costs the task an attempt, so a task that can never be delivered
ends failed after max_attempts instead of being sent again forever. A worker lost after it
accepted the order keeps the old rule: requeued without counting an attempt."""

from __future__ import annotations

import pytest

from tests.integration.fakeworker import FakeWorker, submit, task_view, wait_job, wait_task
from tests.support import MasterProcess, RpcClient

pytestmark = pytest.mark.timeout(30)


def test_an_order_that_drops_the_connection_counts_as_a_failed_attempt(
    master: MasterProcess, api: RpcClient
) -> None:
    job_id = submit(api, "undeliverable", max_attempts=3, retry_delay_s=0)
    deliveries = []
    for _ in range(6):  # more than max_attempts: the old loop would go on and on
        fake = FakeWorker(master.port, "render-01")
        try:
            deliveries.append(fake.next_order("task.run")["params"])
        except AssertionError:
            fake.close()
            break
        fake.sock.close()  # drop the connection without answering the order
        fake.stop_heartbeat()
        if len(deliveries) < 3:
            task_id = deliveries[-1]["task_id"]
            wait_task(api, job_id, task_id, "queued")
            assert task_view(api, job_id, task_id)["attempts"] == len(deliveries)
    assert len(deliveries) == 3
    view = wait_job(api, job_id, "failed")
    task = task_view(api, job_id, deliveries[0]["task_id"])
    assert (task["status"], task["attempts"]) == ("failed", 3)
    assert "disconnected before accepting the order" in task["error"]
    assert view["tasks_by_status"]["failed"] == 1


def test_a_worker_lost_after_accepting_the_order_costs_no_attempt(
    master: MasterProcess, api: RpcClient
) -> None:
    job_id = submit(api, "accepted", max_attempts=1)
    fake = FakeWorker(master.port, "render-01")
    order = fake.take()  # accepted ({}), then the worker goes away
    fake.close()
    wait_task(api, job_id, order["task_id"], "queued")
    assert task_view(api, job_id, order["task_id"])["attempts"] == 0
    again = FakeWorker(master.port, "render-01")
    try:
        again.complete(again.take())
        wait_job(api, job_id, "completed")
    finally:
        again.close()
