"""Retry delays: exponential with jitter, so a farm of agents does not reconnect in step.

The one backoff of the code base: agents, the dashboard and the client reconnecting to the
master, a serial device being reopened, the master reconnecting to its database, the node
restarting an agent that failed to start (without jitter: its delays are shown to operators).
Pure arithmetic: the caller owns the clock.
"""

from __future__ import annotations

import random

# The longest an agent waits between attempts to reach the master. A restarted master waits this
# much longer than one heartbeat timeout for the workers that held tasks before it requeues them
# (farmhand/master/jobs/farm.py), so a worker that backed off while the master was down comes
# back to find its task still its own. Kept short: an agent that backed off for 30 s while the
# master crash-looped came back to find its finished tasks running on another worker
# (bench/faults.py: 4 duplicated executions in 2 of 5 runs of 25 crashes).
AGENT_RECONNECT_MAX_S = 5.0


def exponential_delay(
    retries: int, initial_s: float, maximum_s: float, factor: float = 2.0
) -> float:
    """The delay before retry number `retries` (0 for the first): initial, times `factor` each time,
    at most `maximum_s`."""
    try:
        return float(min(maximum_s, initial_s * factor ** max(0, retries)))
    except OverflowError:  # retrying for days: 2.0 ** 1024 is past a float
        return float(maximum_s)


class Backoff:
    """0.5, 1, 2, 4 … seconds up to `maximum_s`, each scaled by a random factor in [0.5, 1]."""

    def __init__(
        self,
        initial_s: float = 0.5,
        maximum_s: float = 30.0,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.factor = factor
        self._rng = rng or random.Random()
        self._attempts = 0

    def next_delay(self) -> float:
        ceiling = exponential_delay(self._attempts, self.initial_s, self.maximum_s, self.factor)
        self._attempts += 1
        return ceiling * self._rng.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._attempts = 0
