"""The `id12` driver: an ID-Innovations ID-12 / ID-20 RFID reader on a serial port.

A card read becomes token.update at `core.rfid`, present and then at once removed: the card
is not held on the reader (non-captive), so the master's session lasts until the pour ends.
Frames with a bad checksum or shape are logged and dropped.
"""

from __future__ import annotations

import logging

from protocol.id12 import BadFrame, Id12Decoder, TokenRead

from . import Reports, SerialDriver

log = logging.getLogger(__name__)

RFID_READER = "core.rfid"


class Id12Driver(SerialDriver):
    name = "id12"
    role = "auth"
    default_baud = 9600

    def __init__(self, reports: Reports, *, device: str, baud: int) -> None:
        super().__init__(reports, device=device, baud=baud)
        self.decoder = Id12Decoder()
        self.bad_frames = 0

    def opened(self) -> None:
        self.decoder = Id12Decoder()
        super().opened()

    def feed(self, data: bytes) -> None:
        for event in self.decoder.feed(data):
            if isinstance(event, TokenRead):
                log.info("card %s read at %s", event.token, RFID_READER)
                self.reports.token(RFID_READER, event.token, True)
                self.reports.token(RFID_READER, event.token, False)
            elif isinstance(event, BadFrame):
                self.bad_frames += 1
                log.warning(
                    "reader: bad frame dropped (%s, %d so far): %r",
                    event.reason,
                    self.bad_frames,
                    event.raw,
                )
