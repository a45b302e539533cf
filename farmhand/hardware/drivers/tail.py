"""The `tail` driver: follows a growing log file (farmhand.hardware.tailsource) and reports
its lines.

Without `--tail-regex` every non-blank line becomes an `event.report`. With one (a Python regex
with named groups), lines that do not match are skipped; a match with a `value` group becomes a
`reading` (sensor = group `sensor` or the agent's name, kind = group `kind` or "value", unit =
group `unit` or ""); any other match becomes an `event.report` carrying the groups as fields.
The position is saved only after a batch was handed to the master, so a restart neither skips
nor repeats lines.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

from gevent.event import Event

from farmhand.agent.link import OrderHandler
from farmhand.hardware.tailsource import TailFollower

from . import Reports

log = logging.getLogger(__name__)

POLL_S = 0.2
DELIVERY_WAIT_S = 1.0
# The master's limits for a reading's names.
MAX_SENSOR_CHARS, MAX_KIND_CHARS, MAX_UNIT_CHARS = 64, 32, 16


class TailDriver:
    name = "tail"
    role = "hardware"

    def __init__(
        self,
        reports: Reports,
        *,
        path: Path,
        agent_name: str,
        state_file: Path | None,
        regex: re.Pattern[str] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.reports = reports
        self.path = path
        self.agent_name = agent_name
        self.regex = regex
        self.poll_s = poll_s
        self.follower = TailFollower(path, state_file)
        self._online: bool | None = None
        self._stopping = Event()

    @property
    def handlers(self) -> dict[str, OrderHandler]:
        return {}

    def run(self) -> None:
        log.info("tail %s: following (state in %s)", self.path, self.follower.state_file)
        try:
            while not self._stopping.is_set():
                try:
                    lines = self.follower.poll()
                except OSError as exc:
                    log.warning("tail %s: %s", self.path, exc)
                    lines = []
                self._report_status()
                for line in lines:
                    self.line(line)
                if lines and not self._delivered():
                    return  # stopping with lines undelivered: they are read again next time
                self.follower.commit()
                if not lines:
                    self._stopping.wait(self.poll_s)
        finally:
            self.follower.close()
            log.info("tail %s: stopped", self.path)

    def stop(self) -> None:
        self._stopping.set()

    def _delivered(self) -> bool:
        """Wait until the master has the batch (while disconnected, as long as it takes)."""
        while not self.reports.wait_delivered(DELIVERY_WAIT_S):
            if self._stopping.is_set():
                return False
        return True

    def line(self, text: str) -> None:
        if not text.strip():
            return
        source = str(self.path)
        if self.regex is None:
            self.reports.event(source, text, {})
            return
        match = self.regex.search(text)
        if match is None:
            return
        fields = {key: value for key, value in match.groupdict().items() if value is not None}
        value = _number(fields.get("value"))
        if value is None:
            self.reports.event(source, text, fields)
            return
        self.reports.reading(
            (fields.get("sensor") or self.agent_name)[:MAX_SENSOR_CHARS],
            (fields.get("kind") or "value")[:MAX_KIND_CHARS],
            value,
            (fields.get("unit") or "")[:MAX_UNIT_CHARS],
        )

    def _report_status(self) -> None:
        position = self.follower.position
        online = position is not None
        if online == self._online:
            return
        self._online = online
        info: dict[str, Any] = {"url": str(self.path), "driver": self.name}
        if position is not None:
            info["inode"] = position.inode
        log.info("tail %s: %s", self.path, "following" if online else "waiting for the file")
        self.reports.device_status(str(self.path), online, info)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
