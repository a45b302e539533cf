"""`--device sim://`: a simulated device on a pty inside the hardware agent, for demos and trying
farmhand without hardware. The real driver opens the pty like a serial port and decodes the
real bytes (KBSP, ID-12); the master's `sim.*` methods order the simulator to pour, swipe a card
or change a temperature (orders `sim.pour`, `sim.swipe`, `sim.temperature`).

    sim://                       a Kegboard with relays relay0, relay1 and meters flow0, flow1
    sim://?thermo=fridge:3.5     … which also reports sensor `fridge` at 3.5 °C every 5 s
    sim:// with --driver id12    an ID-12 RFID reader
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import gevent

from farmhand.agent.link import OrderHandler
from protocol.errors import invalid_params

from .drivers import Driver
from .kegsim import Id12Sim, KegboardSim

log = logging.getLogger(__name__)

SIM_SCHEME = "sim://"
# A simulated pour comes in steps, as a real meter's ticks do.
POUR_STEP_S = 0.1
MAX_POUR_TICKS = 100_000
MAX_POUR_S = 60.0


def is_simulated(device: str) -> bool:
    return device.startswith(SIM_SCHEME)


def parse_temperatures(url: str) -> dict[str, float]:
    """`thermo=NAME:CELSIUS` (repeatable, or comma-separated) from a sim:// URL."""
    temperatures: dict[str, float] = {}
    for value in parse_qs(urlsplit(url).query).get("thermo", []):
        for item in value.split(","):
            name, _, celsius = item.partition(":")
            try:
                temperatures[name] = float(celsius or "4")
            except ValueError:
                raise ValueError(f"bad thermo {item!r} in {url!r}: expected NAME:CELSIUS") from None
    return temperatures


class SimulatedDevice:
    """The simulator behind a sim:// device and the orders that drive it."""

    def __init__(self, kind: str, url: str) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="farmhand-sim-"))
        link = self.directory / kind
        self.board: KegboardSim | None = None
        self.reader: Id12Sim | None = None
        if kind == "kegboard":
            self.board = KegboardSim(link, temperatures=parse_temperatures(url))
        elif kind == "id12":
            self.reader = Id12Sim(link)
        else:
            raise ValueError(f"sim:// works with --driver kegboard or id12, not {kind}")
        self.link = link

    def start(self) -> None:
        if self.board is not None:
            self.board.start()
        if self.reader is not None:
            self.reader.start()
        log.info("simulated device on %s", self.link)

    def stop(self) -> None:
        if self.board is not None:
            self.board.stop()
        if self.reader is not None:
            self.reader.stop()

    @property
    def handlers(self) -> dict[str, OrderHandler]:
        if self.board is not None:
            return {"sim.pour": self.pour, "sim.swipe": self.swipe, "sim.temperature": self.heat}
        return {"sim.swipe": self.swipe}

    def pour(self, params: dict[str, Any]) -> dict[str, Any]:
        board = self._board()
        meter = str(params.get("meter", "flow0"))
        ticks, seconds = params.get("ticks"), params.get("seconds", 2.0)
        if not isinstance(ticks, int) or not 0 < ticks <= MAX_POUR_TICKS:
            raise invalid_params(f"sim.pour: ticks must be 1-{MAX_POUR_TICKS}", "bad_param")
        if not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_POUR_S:
            raise invalid_params(f"sim.pour: seconds must be 0-{MAX_POUR_S:g}", "bad_param")
        steps = max(1, int(seconds / POUR_STEP_S))
        # The running total first: the master takes a meter's first report after the agent
        # (re)connects as its baseline, which must not swallow the start of the pour.
        board.report_meter(meter)
        gevent.spawn(_pour_steps, board, meter, ticks, steps)
        return {"meter": meter, "ticks": ticks, "seconds": seconds}

    def swipe(self, params: dict[str, Any]) -> dict[str, Any]:
        token = params.get("token")
        if not isinstance(token, str) or not token:
            raise invalid_params("sim.swipe: token must be a hex string", "bad_param")
        try:
            if self.reader is not None:
                self.reader.swipe(token)
            else:
                reader = str(params.get("reader", "core.rfid"))
                present = bool(params.get("present", True))
                self._board().auth_token(token, present=present, device=reader)
        except ValueError as exc:
            raise invalid_params(f"sim.swipe: {exc}", "bad_token") from None
        return {"token": token}

    def heat(self, params: dict[str, Any]) -> dict[str, Any]:
        board = self._board()
        sensor, celsius = params.get("sensor"), params.get("celsius")
        if not isinstance(sensor, str) or not isinstance(celsius, int | float):
            raise invalid_params("sim.temperature: sensor (text) and celsius (number)", "bad_param")
        board.temperatures[sensor] = float(celsius)
        board.temperature(sensor, float(celsius))
        return {"sensor": sensor, "celsius": celsius}

    def _board(self) -> KegboardSim:
        if self.board is None:
            raise invalid_params("this simulated device is a card reader", "not_a_kegboard")
        return self.board


def _pour_steps(board: KegboardSim, meter: str, ticks: int, steps: int) -> None:
    step = -(-ticks // steps)  # ceiling: every tick is poured
    while ticks > 0:
        chunk = min(step, ticks)
        board.pour(chunk, meter=meter)
        ticks -= chunk
        if ticks:
            gevent.sleep(POUR_STEP_S)


class SimulatedDriver:
    """A real driver whose device is a simulator: runs both, answers the simulator's orders."""

    def __init__(self, driver: Driver, device: SimulatedDevice) -> None:
        self.driver = driver
        self.device = device
        self.name = driver.name
        self.role = driver.role

    @property
    def handlers(self) -> dict[str, OrderHandler]:
        return {**self.driver.handlers, **self.device.handlers}

    def run(self) -> None:
        self.device.start()
        self.driver.run()

    def stop(self) -> None:
        self.driver.stop()
        self.device.stop()
