"""The dispatch record is durable before `task.run` leaves (issue 10.6): a master killed the
moment its order arrives comes back knowing which worker holds which attempt, and waits for
that worker instead of running the task a second time."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from tests.integration.fakeworker import FakeWorker, submit, task_view, wait_job
from tests.support import MasterProcess, RpcClient

pytestmark = pytest.mark.timeout(60)


def stored_task(db_path: Path, task_id: int) -> tuple[str, str | None, str | None]:
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        row = db.execute(
            'SELECT status, attempt, worker FROM "task" WHERE id = ?', (task_id,)
        ).fetchone()
    return row[0], row[1], row[2]


@pytest.mark.parametrize("run", range(5))
def test_a_master_killed_as_its_order_arrives_keeps_the_attempt_with_its_worker(
    tmp_path: Path, run: int
) -> None:
    data_dir = tmp_path / "var"
    first = MasterProcess(data_dir)
    fake = None
    try:
        with RpcClient(first.port) as api:
            job_id = submit(api, "durable")
        fake = FakeWorker(first.port, "render-01")
        order = fake.next_order("task.run")
        first.proc.kill()  # kill -9 the moment the order is here, before anything else
        first.proc.wait(10)
        attempt = order["params"]["attempt"]
        task_id = order["params"]["task_id"]
        assert stored_task(data_dir / "farmhand.db", task_id) == (
            "dispatched",
            attempt,
            "render-01",
        )
    finally:
        first.close()
        if fake is not None:
            fake.close()
    second = MasterProcess(data_dir)
    back = None
    try:
        back = FakeWorker(second.port, "render-01", attempts=[attempt])
        # The worker still holds the attempt: it is neither canceled nor given out again.
        back.expect_no_order("task.cancel", within=0.5)
        back.expect_no_order("task.run", within=0.1)
        back.started(attempt)
        assert back.finished(attempt, exit_code=0)["result"] == {}
        with RpcClient(second.port) as api:
            wait_job(api, job_id, "completed")
            view = task_view(api, job_id, task_id)
            assert (view["attempt"], view["worker"], view["attempts"]) == (
                attempt,
                "render-01",
                0,
            )
    finally:
        if back is not None:
            back.close()
        second.stop()
