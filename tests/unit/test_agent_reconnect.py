"""An agent's reconnect delays stay well inside the restarted master's wait for its workers.

A master that starts again keeps the tasks that were in flight for one heartbeat timeout, waiting
for their workers to say hello; after that it requeues them elsewhere. A worker that backed off
longer than that while the master crash-looped found its finished tasks running again on
another worker (bench/faults.py saw 4 duplicated executions in 2 of 5 runs of 25 crashes).
"""

from __future__ import annotations

import pytest

from farmhand.agent.runtime import AgentRuntime
from farmhand.master.config import MasterConfig
from farmhand.options import MasterAddress

pytestmark = pytest.mark.fast


def test_after_any_number_of_refusals_an_agent_retries_within_a_third_of_the_masters_wait() -> None:
    runtime = AgentRuntime(master=MasterAddress("127.0.0.1", 6000), name="w1", role="worker")
    wait_s = MasterConfig().heartbeat_timeout_s
    delays = [runtime.backoff.next_delay() for _ in range(200)]
    assert max(delays) <= wait_s / 3
    # and it still backs off: the first retries come fast, the later ones no faster
    assert delays[0] < 1.0 <= max(delays)
