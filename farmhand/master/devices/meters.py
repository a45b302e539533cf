"""Flow meters are odometers: the device reports a running tick total, we turn it into deltas.

Kegbot's rules: the first reading of a meter after its agent connects sets the baseline; a
later increase of 1 to 1000 ticks is poured beer; anything else (the board reset and counts from
zero, or an implausible jump) only moves the baseline.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

MAX_DELTA_TICKS = 1000


class MeterTracker:
    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}

    def forget_agent(self, agent: str) -> None:
        """The agent reconnected: its next reading of each meter is a new baseline."""
        for key in [key for key in self._last if key[0] == agent]:
            del self._last[key]

    def update(self, agent: str, meter: str, ticks: int) -> int:
        """The ticks to add to the meter's flow (0 for a baseline or a re-baseline)."""
        key = (agent, meter)
        last = self._last.get(key)
        self._last[key] = ticks
        if last is None:
            log.debug("meter %s.%s: baseline %d", agent, meter, ticks)
            return 0
        delta = ticks - last
        if 1 <= delta <= MAX_DELTA_TICKS:
            return delta
        if delta != 0:
            log.info("meter %s.%s jumped from %d to %d: new baseline", agent, meter, last, ticks)
        return 0
