"""Simulated devices on a pty: a Kegboard speaking KBSP like the firmware (docs/kegboard.md) and
an ID-12 RFID reader. `hwagent.py --device sim://…` runs one in-process (simulated.py); the tests
drive them directly.

The agent opens `link` (a symlink to the current pty's slave, because a new pty gets a new
path): `unplug()` closes the pty (the agent sees its device vanish) and `plug()` makes a new
one and re-points the symlink. The board sends hello at boot, every `hello_every_s` and in
answer to ping; meter_status when a meter's ticks change (`pour`); auth_token and temperature
on demand; output_status after each set_output; and switches a relay off `watchdog_s` after
the last set_output that turned it on; and the `temperatures` it holds every
`temperature_every_s`. A thread does the reading and the timers, so tests in plain pytest (and
the unpatched gevent hwagent) can drive it.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from pathlib import Path

from protocol.id12 import encode_id12
from protocol.kbsp import (
    AUTH_TOKEN,
    HELLO,
    METER_STATUS,
    ONEWIRE_PRESENCE,
    OUTPUT_STATUS,
    PING,
    SET_OUTPUT,
    SET_SERIAL_NUMBER,
    TEMPERATURE_READING,
    KbspDecoder,
    UnknownMessage,
    encode_frame,
    parse_tags,
)

TICK_S = 0.02
SEND_TIMEOUT_S = 2.0


class PtyDevice:
    """A pty whose slave path is published through a symlink; the simulators' common part."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master_fd: int | None = None
        self._slave_fd: int | None = None
        self._lock = threading.Lock()

    @property
    def plugged(self) -> bool:
        return self.master_fd is not None

    def open_pty(self) -> None:
        master_fd, slave_fd = os.openpty()
        # Raw, no echo: otherwise the line discipline would echo our own output back to us and
        # turn CR LF around before the agent opens (and sets) the port.
        tty.setraw(slave_fd)
        os.set_blocking(master_fd, False)
        self.master_fd, self._slave_fd = master_fd, slave_fd
        tmp = self.link.with_name(self.link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(slave_fd))
        os.replace(tmp, self.link)

    def close_pty(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()
        with self._lock:
            for fd in (self.master_fd, self._slave_fd):
                if fd is not None:
                    os.close(fd)
            self.master_fd = self._slave_fd = None

    def send(self, data: bytes) -> None:
        """Write to the agent. Like a UART, a board does not wait for a listener: bytes are
        dropped while unplugged, or when nobody has read the pty for SEND_TIMEOUT_S."""
        with self._lock:
            fd = self.master_fd
            if fd is None:
                return
            deadline = time.monotonic() + SEND_TIMEOUT_S
            while data and time.monotonic() < deadline:
                try:
                    data = data[os.write(fd, data) :]
                except BlockingIOError:
                    select.select([], [fd], [], 0.05)
                except OSError:
                    return

    def receive(self, timeout: float) -> bytes:
        fd = self.master_fd
        if fd is None:
            time.sleep(timeout)
            return b""
        try:
            readable, _, _ = select.select([fd], [], [], timeout)
            return os.read(fd, 4096) if readable else b""
        except OSError:
            return b""  # closed under us (unplug), or nobody has the slave open (EIO)


class KegboardSim:
    def __init__(
        self,
        link: Path,
        *,
        serial_number: str = "kegsim-0001",
        firmware_version: int = 18,
        hello_every_s: float = 10.0,
        watchdog_s: float = 10.0,
        relays: int = 2,
        temperatures: dict[str, float] | None = None,
        temperature_every_s: float = 5.0,
    ) -> None:
        self.device = PtyDevice(link)
        self.serial_number = serial_number
        self.firmware_version = firmware_version
        self.hello_every_s = hello_every_s
        self.watchdog_s = watchdog_s
        self.ticks: dict[str, int] = {}
        self.relays = dict.fromkeys(range(relays), False)
        self.relay_deadline: dict[int, float] = {}
        self.pings = 0
        self.temperatures = dict(temperatures or {})
        self.temperature_every_s = temperature_every_s
        self._next_temperature = 0.0
        self.set_outputs: list[tuple[int, bool]] = []
        self._booted = time.monotonic()
        self._next_hello = 0.0
        self._decoder = KbspDecoder()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kegsim", daemon=True)

    @property
    def link(self) -> Path:
        return self.device.link

    def start(self) -> KegboardSim:
        self.plug()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.device.close_pty()

    def __enter__(self) -> KegboardSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the cable -----------------------------------------------------------------------------
    def plug(self) -> None:
        """Power up on a new pty: relays off, meters from zero, a boot hello."""
        with self._lock:
            self.device.open_pty()
            self._decoder = KbspDecoder()
            self.ticks.clear()
            self.relays = dict.fromkeys(self.relays, False)
            self.relay_deadline.clear()
            self._booted = time.monotonic()
            self._hello()

    def unplug(self) -> None:
        with self._lock:
            self.device.close_pty()

    # -- what a test does to the board ---------------------------------------------------------
    def pour(self, ticks: int, meter: str = "flow0", step: int = 0) -> None:
        """Add ticks to a meter: one meter_status, or one per `step` ticks."""
        step = step or ticks
        while ticks > 0:
            chunk = min(step, ticks)
            ticks -= chunk
            with self._lock:
                self.ticks[meter] = self.ticks.get(meter, 0) + chunk
                self._send(
                    METER_STATUS,
                    [(1, meter.encode()), (2, self.ticks[meter].to_bytes(4, "little"))],
                )

    def report_meter(self, meter: str = "flow0") -> None:
        """One meter_status with the meter's running total, as the firmware sends now and then."""
        with self._lock:
            total = self.ticks.setdefault(meter, 0)
            self._send(METER_STATUS, [(1, meter.encode()), (2, total.to_bytes(4, "little"))])

    def auth_token(self, token_hex: str, present: bool = True, device: str = "core.rfid") -> None:
        """A token at a reader; `token_hex` as the host reports it (the wire has it reversed)."""
        wire = bytes.fromhex(token_hex)[::-1]
        self._send(
            AUTH_TOKEN, [(1, device.encode()), (2, wire), (3, bytes((1 if present else 0,)))]
        )

    def onewire_presence(self, device_id: int) -> None:
        """Old firmware: the 1-wire bus's device (0 when empty), without a status tag."""
        self._send(ONEWIRE_PRESENCE, [(1, device_id.to_bytes(8, "little"))])

    def temperature(self, sensor: str, celsius: float) -> None:
        micro = round(celsius * 1e6)
        self._send(
            TEMPERATURE_READING,
            [(1, sensor.encode()), (2, micro.to_bytes(4, "little", signed=True))],
        )

    def send_raw(self, data: bytes) -> None:
        self.device.send(data)

    def relay(self, relay: int) -> bool:
        with self._lock:
            return self.relays.get(relay, False)

    # -- the firmware --------------------------------------------------------------------------
    def _send(self, message_id: int, tags: list[tuple[int, bytes]]) -> None:
        self.device.send(encode_frame(message_id, tags))

    def _hello(self) -> None:
        uptime_ms = int((time.monotonic() - self._booted) * 1000)
        self._send(
            HELLO,
            [
                (1, self.firmware_version.to_bytes(2, "little")),
                (2, (1).to_bytes(2, "little")),
                (3, self.serial_number.encode().ljust(30, b"\x00")),
                (4, uptime_ms.to_bytes(4, "little")),
                (5, (0).to_bytes(4, "little")),
            ],
        )
        self._next_hello = time.monotonic() + self.hello_every_s

    def _run(self) -> None:
        while not self._stop.is_set():
            data = self.device.receive(TICK_S)
            with self._lock:
                if not self.device.plugged:
                    continue
                for message in self._decoder.feed(data) if data else []:
                    if isinstance(message, UnknownMessage):
                        self._command(message.message_id, message.payload)
                self._timers(time.monotonic())

    def _command(self, message_id: int, payload: bytes) -> None:
        tags = parse_tags(payload)
        if message_id == PING:
            self.pings += 1
            self._hello()
        elif message_id == SET_OUTPUT and 1 in tags and 2 in tags:
            relay, on = tags[1][0], tags[2][0] != 0
            self.set_outputs.append((relay, on))
            if relay in self.relays:
                self.relays[relay] = on
                if on:
                    self.relay_deadline[relay] = time.monotonic() + self.watchdog_s
                else:
                    self.relay_deadline.pop(relay, None)
                self._output_status(relay)
        elif message_id == SET_SERIAL_NUMBER and 1 in tags:
            self.serial_number = tags[1].rstrip(b"\x00").decode(errors="replace")

    def _output_status(self, relay: int) -> None:
        state = b"\x01" if self.relays[relay] else b"\x00"
        self._send(OUTPUT_STATUS, [(1, f"relay{relay}".encode()), (2, state)])

    def _timers(self, now: float) -> None:
        for relay, deadline in list(self.relay_deadline.items()):
            if now >= deadline:
                # The firmware's watchdog: no repeated command, so the valve closes.
                del self.relay_deadline[relay]
                self.relays[relay] = False
                self._output_status(relay)
        if now >= self._next_hello:
            self._hello()
        if self.temperatures and now >= self._next_temperature:
            self._next_temperature = now + self.temperature_every_s
            for sensor, celsius in self.temperatures.items():
                self.temperature(sensor, celsius)


class Id12Sim:
    """An ID-12 RFID reader on a pty: `swipe(token)` sends the frame a card makes."""

    def __init__(self, link: Path) -> None:
        self.device = PtyDevice(link)

    @property
    def link(self) -> Path:
        return self.device.link

    def start(self) -> Id12Sim:
        self.device.open_pty()
        return self

    def stop(self) -> None:
        self.device.close_pty()

    def swipe(self, token_hex: str) -> None:
        self.device.send(encode_id12(token_hex))
