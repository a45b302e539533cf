"""The `kegboard` driver: a Kegboard speaking KBSP (docs/kegboard.md) on a serial port.

Meters, thermometers and token readers become meter.update / reading / token.update; the
master's `output.set` switches relays. The board turns a relay off by itself 10 s after the last
set_output, so a relay the master wants on is re-sent every RELAY_REFRESH_S.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import gevent

from farmhand.agent.link import OrderHandler
from farmhand.hardware.serialsource import DeviceOffline
from protocol.errors import ErrorCode, RpcError, invalid_params
from protocol.kbsp import (
    ONEWIRE_READER,
    AuthToken,
    Hello,
    KbspDecoder,
    KbspMessage,
    MeterStatus,
    OnewirePresence,
    OutputStatus,
    TemperatureReading,
    UnknownMessage,
    encode_ping,
    encode_set_output,
)

from . import Reports, SerialDriver

log = logging.getLogger(__name__)

# Half the board's 10 s relay watchdog: one lost command does not close a valve mid-pour.
RELAY_REFRESH_S = 5.0
RELAY_NAME = re.compile(r"relay(\d{1,3})")


class KegboardDriver(SerialDriver):
    name = "kegboard"
    role = "hardware"
    default_baud = 115200

    def __init__(
        self,
        reports: Reports,
        *,
        device: str,
        baud: int,
        relay_refresh_s: float = RELAY_REFRESH_S,
    ) -> None:
        super().__init__(reports, device=device, baud=baud)
        self.relay_refresh_s = relay_refresh_s
        self.decoder = KbspDecoder()
        self.relays_wanted: dict[int, bool] = {}  # what the master ordered
        self.relays: dict[str, bool] = {}  # what the board last reported
        self._onewire_present: int | None = None  # old firmware's 1-wire device on the bus

    @property
    def handlers(self) -> dict[str, OrderHandler]:
        return {"output.set": self.set_output}

    def run(self) -> None:
        refresher = gevent.spawn(self._refresh_relays)
        try:
            super().run()
        finally:
            refresher.kill()

    # -- the device ----------------------------------------------------------------------------
    def opened(self) -> None:
        self.decoder = KbspDecoder()  # a half frame from before the replug is noise now
        super().opened()
        self._write(encode_ping(), "ping")
        for relay, on in sorted(self.relays_wanted.items()):
            if on:
                self._write(encode_set_output(relay, True), f"relay{relay} on (resumed)")

    def closed(self, reason: str) -> None:
        self.relays.clear()
        super().closed(reason)

    def feed(self, data: bytes) -> None:
        for message in self.decoder.feed(data):
            self.handle(message)

    def handle(self, message: KbspMessage) -> None:
        reports = self.reports
        if isinstance(message, MeterStatus):
            reports.meter(message.meter, message.ticks)
        elif isinstance(message, TemperatureReading):
            reports.reading(message.sensor, "temperature", message.celsius, "C")
        elif isinstance(message, AuthToken):
            log.info(
                "token %s %s at %s",
                message.token,
                "present" if message.present else "removed",
                message.reader,
            )
            reports.token(message.reader, message.token, message.present)
        elif isinstance(message, OnewirePresence):
            self._onewire(message)
        elif isinstance(message, OutputStatus):
            if self.relays.get(message.output) != message.on:
                log.info("board: %s is %s", message.output, "on" if message.on else "off")
            self.relays[message.output] = message.on
        elif isinstance(message, Hello):
            self._hello(message)
        elif isinstance(message, UnknownMessage):
            log.debug("board: unknown message 0x%02x skipped", message.message_id)

    def _hello(self, hello: Hello) -> None:
        board = {
            "firmware_version": hello.firmware_version,
            "protocol_version": hello.protocol_version,
            "serial_number": hello.serial_number,
        }
        if any(self.info.get(key) != value for key, value in board.items()):
            log.info(
                "board: firmware %s, serial %s", hello.firmware_version, hello.serial_number or "-"
            )
        self.info.update(board)
        self.report_status(True)

    def _onewire(self, message: OnewirePresence) -> None:
        # Old firmware reports id 0 when the bus is empty: that ends the last device's presence.
        if message.device_id == 0 or not message.present:
            gone = self._onewire_present if message.device_id == 0 else message.device_id
            self._onewire_present = None
            if gone is not None:
                self.reports.token(ONEWIRE_READER, f"{gone:016x}", False)
            return
        if self._onewire_present not in (None, message.device_id):
            self.reports.token(ONEWIRE_READER, f"{self._onewire_present:016x}", False)
        self._onewire_present = message.device_id
        self.reports.token(ONEWIRE_READER, f"{message.device_id:016x}", True)

    # -- relays --------------------------------------------------------------------------------
    def set_output(self, params: dict[str, Any]) -> dict[str, Any]:
        """Order `output.set` {output: "relayN", on}: switch the relay now, keep it on."""
        output, on = params.get("output"), params.get("on")
        match = RELAY_NAME.fullmatch(output) if isinstance(output, str) else None
        if match is None or int(match[1]) > 0xFF:
            raise invalid_params(f"output must be relay0..relay255, not {output!r}", "bad_output")
        if not isinstance(on, bool):
            raise invalid_params("on must be true or false", "bad_param")
        relay = int(match[1])
        if on:
            self.relays_wanted[relay] = True
        else:
            self.relays_wanted.pop(relay, None)
        log.info("master: %s %s", output, "on" if on else "off")
        try:
            self.source.write(encode_set_output(relay, on))
        except DeviceOffline as exc:
            raise RpcError(ErrorCode.CONFLICT, str(exc), "device_offline") from None
        return {}

    def _refresh_relays(self) -> None:
        while True:
            gevent.sleep(self.relay_refresh_s)
            for relay, on in sorted(self.relays_wanted.items()):
                if on and self.source.online:
                    self._write(encode_set_output(relay, True), f"relay{relay} on (refresh)")

    def _write(self, frame: bytes, what: str) -> None:
        try:
            self.source.write(frame)
            log.debug("board ← %s", what)
        except DeviceOffline as exc:
            log.warning("board: could not send %s: %s", what, exc)
