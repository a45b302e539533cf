"""The journal's lazy changes: a task's start costs no flush of its own, is stored with the next
one, and at the latest after LAZY_FLUSH_S when nothing else comes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import gevent

from farmhand.master.jobs.journal import LAZY_FLUSH_S
from tests.unit.farmkit import FarmKit


def stored_status(tmp_path: Path, task_id: int) -> str:
    with sqlite3.connect(tmp_path / "farm.db") as db:
        return str(db.execute('SELECT status FROM "task" WHERE id = ?', (task_id,)).fetchone()[0])


def test_a_start_costs_no_flush_of_its_own_and_is_stored_soon(tmp_path: Path) -> None:
    kit = FarmKit(tmp_path)
    journal = kit.farm.journal
    try:
        worker = kit.worker("w1")
        kit.submit()
        (order,) = kit.orders(worker)
        journal.start()
        journal.committed().get(timeout=10)  # the flusher ran and waits for work again
        flushes = journal.flushes
        kit.farm.task_started(worker, order["attempt"])
        for _ in range(3):
            gevent.sleep(0)  # the flusher's turns: it must not take the start alone
        assert journal.pending == 1
        assert journal.flushes == flushes
        with gevent.Timeout(LAZY_FLUSH_S + 5):
            while journal.pending or journal.flushes == flushes:
                gevent.sleep(0.01)
        assert stored_status(tmp_path, order["task_id"]) == "running"
    finally:
        journal.stop()
        kit.close()


def test_a_result_after_a_start_takes_it_along_in_one_commit(tmp_path: Path) -> None:
    kit = FarmKit(tmp_path)
    journal = kit.farm.journal
    try:
        worker = kit.worker("w1")
        kit.submit()
        (order,) = kit.orders(worker)
        journal.start()
        journal.committed().get(timeout=10)
        flushes = journal.flushes
        kit.farm.task_started(worker, order["attempt"])
        done = kit.farm.task_finished(worker, order["attempt"], 0, None)
        assert done.get(timeout=10) == {}
        assert journal.flushes == flushes + 1
        assert stored_status(tmp_path, order["task_id"]) == "completed"
    finally:
        journal.stop()
        kit.close()
