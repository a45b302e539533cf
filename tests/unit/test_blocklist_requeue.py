"""jobs.requeue clears a job's blocklist for good (issue 10.8): the clearing is stored, so a
restarted master does not bring the blocklist back. The real farm in process on real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.farmkit import FarmKit

pytestmark = pytest.mark.fast


def test_a_requeue_clears_the_blocklist_also_after_a_restart(tmp_path: Path) -> None:
    kit = FarmKit(tmp_path)
    try:
        bad = kit.worker("bad-01")
        job_id = kit.submit(frames="1-4", max_attempts=10, retry_delay_s=0)
        for _ in range(3):
            (order,) = kit.orders(bad)
            kit.finish(bad, order, exit_code=1)
        assert kit.orders(bad) == []  # blocklisted for this job
        state = kit.farm.board.jobs[job_id]
        kit.farm.cancel(state)
        kit.farm.requeue(state)
        assert len(kit.orders(bad)) == 1  # cleared in memory
        kit.restart()
        bad = kit.worker("bad-01")
        state = kit.farm.board.jobs[job_id]
        assert state.blocklist == {}
        (order,) = kit.orders(bad)  # its task was requeued by the restart; still not blocked
        assert order["job_id"] == job_id
    finally:
        kit.close()
