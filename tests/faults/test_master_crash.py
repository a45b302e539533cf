"""kill -9 of the master under concurrent submissions, several rounds: nothing acknowledged is
lost, no task runs twice (the tasks' own ledger says so) and SQLite stays intact."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.harness import crash_rounds

ROUNDS = 12


@pytest.mark.timeout(180)
def test_kill_9_of_the_master_under_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    verdict = crash_rounds(tmp_path, ROUNDS, seed=10)
    print(verdict.line())
    assert verdict.acked_jobs > 0
    assert verdict.lost == 0
    assert verdict.duplicated == 0
    assert verdict.integrity == "ok"
    assert verdict.executions >= verdict.acked_tasks
