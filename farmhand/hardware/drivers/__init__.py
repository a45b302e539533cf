"""Device drivers for `hwagent.py`: each turns one device's bytes (or a file's lines) into reports
for the master. `Reports` is what a driver reports to; `SerialDriver` is the shared base of the
drivers that read a serial port (kegboard, id12, lines).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from farmhand.agent.link import OrderHandler
from farmhand.hardware.serialsource import SerialSource

log = logging.getLogger(__name__)

DRIVER_NAMES = ("kegboard", "lines", "id12", "tail")
# The device's own speed: Kegboard firmware runs at 115200, ID-12 readers at 9600.
DEFAULT_BAUD = {"kegboard": 115200, "id12": 9600, "lines": 9600}


class Reports(Protocol):
    """Where drivers send what they saw; the hardware service queues it for the master."""

    def meter(self, meter: str, ticks: int) -> None: ...

    def reading(self, sensor: str, kind: str, value: float, unit: str) -> None: ...

    def token(self, reader: str, token: str, present: bool) -> None: ...

    def device_status(self, device: str, online: bool, info: dict[str, Any]) -> None: ...

    def event(self, source: str, text: str, fields: dict[str, Any]) -> None: ...

    def wait_delivered(self, timeout_s: float) -> bool:
        """True once everything reported so far has been sent to the master."""
        ...


class Driver(Protocol):
    """What the hardware service runs: `run()` until `stop()`, plus orders it handles."""

    name: str
    role: str  # the hello role: `hardware` or `auth`

    @property
    def handlers(self) -> dict[str, OrderHandler]: ...

    def run(self) -> None: ...

    def stop(self) -> None: ...


class SerialDriver:
    """A driver on a serial port: owns the SerialSource, reports device.status on each change
    of online state or info, and hands bytes to `feed()`."""

    name = "serial"
    role = "hardware"
    default_baud = 9600

    def __init__(self, reports: Reports, *, device: str, baud: int) -> None:
        self.reports = reports
        self.device = device
        self.info: dict[str, Any] = {"url": device, "driver": self.name, "baud": baud}
        self.source = SerialSource(
            device, baud, on_data=self.feed, on_open=self.opened, on_close=self.closed
        )
        self._reported: tuple[bool, dict[str, Any]] | None = None

    @property
    def handlers(self) -> dict[str, OrderHandler]:
        return {}

    def run(self) -> None:
        self.source.run()

    def stop(self) -> None:
        self.source.stop()

    def opened(self) -> None:
        self.report_status(True)

    def closed(self, reason: str) -> None:
        self.report_status(False, reason=reason)

    def feed(self, data: bytes) -> None:
        raise NotImplementedError

    def report_status(self, online: bool, **extra: Any) -> None:
        """device.status, only when the state or the info changed since the last report."""
        info = {**self.info, **extra}
        if self._reported == (online, info):
            return
        if self._reported is None or self._reported[0] != online:
            log.info("device %s is %s", self.device, "online" if online else "offline")
        self._reported = (online, info)
        self.reports.device_status(self.device, online, info)
