"""The `lines` driver: DIY sensors that print one reading per line (protocol.sensorlines).

`name=value [unit]` or a JSON object per line becomes a `reading` or a `meter.update`; a line
that does not parse is logged and skipped, never fatal.
"""

from __future__ import annotations

import logging

from protocol.errors import ProtocolError
from protocol.sensorlines import MAX_LINE_CHARS, MeterUpdate, Reading, parse_sensor_line

from . import Reports, SerialDriver

log = logging.getLogger(__name__)

# Bytes kept while waiting for a newline; more is a device that never ends its lines.
MAX_PENDING_BYTES = 4 * MAX_LINE_CHARS


class LinesDriver(SerialDriver):
    name = "lines"
    role = "hardware"
    default_baud = 9600

    def __init__(self, reports: Reports, *, device: str, baud: int) -> None:
        super().__init__(reports, device=device, baud=baud)
        self._buf = bytearray()
        self.bad_lines = 0

    def opened(self) -> None:
        self._buf.clear()  # the start of a line from before the replug would be garbage
        super().opened()

    def feed(self, data: bytes) -> None:
        self._buf += data
        end = self._buf.rfind(b"\n")
        if end < 0:
            if len(self._buf) > MAX_PENDING_BYTES:
                self._bad(f"{len(self._buf)} bytes without a newline")
                self._buf.clear()
            return
        lines = bytes(self._buf[:end]).split(b"\n")
        del self._buf[: end + 1]
        for raw in lines:
            self.line(raw.decode("utf-8", errors="replace"))

    def line(self, text: str) -> None:
        try:
            parsed = parse_sensor_line(text)
        except ProtocolError as exc:
            self._bad(exc.message)
            return
        if isinstance(parsed, Reading):
            self.reports.reading(parsed.sensor, parsed.kind, parsed.value, parsed.unit)
        elif isinstance(parsed, MeterUpdate):
            self.reports.meter(parsed.meter, parsed.ticks)

    def _bad(self, why: str) -> None:
        self.bad_lines += 1
        log.warning("device %s: bad line skipped (%d so far): %s", self.device, self.bad_lines, why)
