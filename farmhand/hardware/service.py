"""The hardware agent's service: runs one driver (kegboard, id12, lines, tail) and carries what it
reports to the master through the agent runtime's link, queueing while the master is away.

Theory of operation: every report gets a sequence number and waits in one of two queues:
`bulk` (meter.update, reading — droppable: a meter is an odometer and a sensor sends again) and
`keep` (token.update, device.status, event.report — never dropped). One sender greenlet sends
the oldest report of either queue whenever it has a link; meter.update, reading and
event.report go as notifications for throughput, token.update and device.status as requests.
While disconnected at most `capacity` reports wait; past that the oldest bulk report goes.
`wait_delivered()` lets the tail driver save its position only once its lines are sent.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event

from farmhand.agent.link import LinkClosed, MasterLink, OrderHandler
from farmhand.hardware.drivers import Driver
from farmhand.hardware.drivers.id12 import Id12Driver
from farmhand.hardware.drivers.kegboard import RELAY_REFRESH_S, KegboardDriver
from farmhand.hardware.drivers.lines import LinesDriver
from farmhand.hardware.drivers.tail import TailDriver
from farmhand.hardware.simulated import SimulatedDevice, SimulatedDriver, is_simulated
from protocol.errors import RpcError

log = logging.getLogger(__name__)

MAX_PENDING_REPORTS = 10_000
REQUEST_TIMEOUT_S = 10.0
RETRY_PAUSE_S = 1.0
DROP_LOG_EVERY = 1000


@dataclass(slots=True)
class Report:
    seq: int
    method: str
    params: dict[str, Any]
    request: bool  # wait for the master's answer (else a notification)


class ReportOutbox:
    """Reports on their way to the master (implements farmhand.hardware.drivers.Reports)."""

    def __init__(self, capacity: int = MAX_PENDING_REPORTS) -> None:
        self.capacity = capacity
        self._bulk: deque[Report] = deque()
        self._keep: deque[Report] = deque()
        self._last_seq = 0
        self.done_seq = 0  # every report up to here was sent (or dropped)
        self.sent_total = 0
        self.dropped_total = 0
        self._dropped_unlogged = 0
        self._link: MasterLink | None = None
        self._wake = Event()
        self._waiters: list[tuple[int, Event]] = []
        self._sender: gevent.Greenlet | None = None

    # -- what drivers call -----------------------------------------------------------------
    def meter(self, meter: str, ticks: int) -> None:
        self._put("meter.update", {"meter": meter, "ticks": ticks}, droppable=True)

    def reading(self, sensor: str, kind: str, value: float, unit: str) -> None:
        params = {"sensor": sensor, "kind": kind, "value": value, "unit": unit}
        self._put("reading", params, droppable=True)

    def token(self, reader: str, token: str, present: bool) -> None:
        params = {"reader": reader, "token": token, "present": present}
        self._put("token.update", params, request=True)

    def device_status(self, device: str, online: bool, info: dict[str, Any]) -> None:
        params = {"device": device, "online": online, "info": info}
        self._put("device.status", params, request=True)

    def event(self, source: str, text: str, fields: dict[str, Any]) -> None:
        self._put("event.report", {"source": source, "text": text, "fields": fields})

    def wait_delivered(self, timeout_s: float) -> bool:
        target = self._last_seq
        if self.done_seq >= target:
            return True
        waiter = (target, Event())
        self._waiters.append(waiter)
        try:
            return bool(waiter[1].wait(timeout_s))
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    # -- state -----------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return len(self._bulk) + len(self._keep)

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link.closed

    def send_over(self, link: MasterLink) -> None:
        """A new connection to the master: send what waits."""
        self._link = link
        if self._dropped_unlogged:
            log.warning(
                "%d readings were dropped while the master was away", self._dropped_unlogged
            )
            self._dropped_unlogged = 0
        if self.pending:
            log.info("master back: sending %d queued reports", self.pending)
        self._wake.set()

    def start(self) -> None:
        self._sender = gevent.spawn(self._run)

    def stop(self) -> None:
        if self._sender is not None:
            self._sender.kill()
            self._sender = None

    # -- inside ----------------------------------------------------------------------------
    def _put(
        self, method: str, params: dict[str, Any], droppable: bool = False, request: bool = False
    ) -> None:
        self._last_seq += 1
        if method == "device.status":
            # Only a device's latest state matters: a flapping cable must not fill the queue.
            stale = [
                r
                for r in self._keep
                if r.method == method and r.params["device"] == params["device"]
            ]
            for report in stale:
                self._keep.remove(report)
        (self._bulk if droppable else self._keep).append(
            Report(self._last_seq, method, params, request)
        )
        if self.pending > self.capacity and self._bulk:
            self._bulk.popleft()
            self.dropped_total += 1
            self._dropped_unlogged += 1
            if self.dropped_total % DROP_LOG_EVERY == 1:
                log.warning(
                    "%d reports waiting for the master: dropping the oldest readings "
                    "(%d dropped so far)",
                    self.capacity,
                    self.dropped_total,
                )
        self._wake.set()

    def _next(self) -> Report | None:
        bulk, keep = self._bulk, self._keep
        if bulk and (not keep or bulk[0].seq < keep[0].seq):
            return bulk[0]
        return keep[0] if keep else None

    def _run(self) -> None:
        while True:
            self._wake.clear()
            report, link = self._next(), self._link
            if report is None:
                self._done(self._last_seq)
            if report is None or link is None or link.closed:
                self._wake.wait()
                continue
            try:
                if report.request:
                    link.call(report.method, report.params, timeout=REQUEST_TIMEOUT_S)
                else:
                    link.notify(report.method, report.params)
            except LinkClosed:
                continue  # keep it: the runtime reconnects and hands over the next link
            except RpcError as exc:
                log.warning("master refused %s %s: %s", report.method, report.params, exc.message)
            except gevent.Timeout:
                log.warning(
                    "no answer to %s in %.0fs; sending again", report.method, REQUEST_TIMEOUT_S
                )
                gevent.sleep(RETRY_PAUSE_S)
                continue
            self.sent_total += 1
            # Sending may yield: a full queue can have dropped this very report meanwhile.
            for queue in (self._bulk, self._keep):
                if queue and queue[0] is report:
                    queue.popleft()
            self._done(report.seq)

    def _done(self, seq: int) -> None:
        self.done_seq = max(self.done_seq, seq)
        for waiter in [w for w in self._waiters if w[0] <= self.done_seq]:
            waiter[1].set()


class HardwareService:
    """One driver, one outbox: what `hwagent.py` wires to the agent runtime."""

    def __init__(self, driver: Driver, outbox: ReportOutbox) -> None:
        self.driver = driver
        self.outbox = outbox
        self._device: gevent.Greenlet | None = None

    @property
    def handlers(self) -> dict[str, OrderHandler]:
        return self.driver.handlers

    def on_connected(self, link: MasterLink) -> None:
        self.outbox.send_over(link)

    def start(self) -> None:
        self.outbox.start()
        self._device = gevent.spawn(self.driver.run)

    def shutdown(self, timeout_s: float) -> None:
        """Stop the device, then give queued reports up to timeout_s to reach the master."""
        deadline = time.monotonic() + timeout_s
        self.driver.stop()
        if self._device is not None:
            self._device.join(timeout=timeout_s)
            self._device.kill()
        if self.outbox.pending and self.outbox.connected:
            self.outbox.wait_delivered(max(0.0, deadline - time.monotonic()))
        if self.outbox.pending:
            log.warning("stopping with %d reports undelivered", self.outbox.pending)
        self.outbox.stop()


def build_driver(
    kind: str,
    outbox: ReportOutbox,
    *,
    device: str,
    baud: int,
    agent_name: str,
    state_file: Path | None = None,
    tail_regex: re.Pattern[str] | None = None,
    relay_refresh_s: float = RELAY_REFRESH_S,
) -> Driver:
    if is_simulated(device):
        simulator = SimulatedDevice(kind, device)
        driver = build_driver(
            kind, outbox, device=str(simulator.link), baud=baud, agent_name=agent_name,
            relay_refresh_s=relay_refresh_s,
        )  # fmt: skip
        return SimulatedDriver(driver, simulator)
    if kind == "kegboard":
        return KegboardDriver(outbox, device=device, baud=baud, relay_refresh_s=relay_refresh_s)
    if kind == "id12":
        return Id12Driver(outbox, device=device, baud=baud)
    if kind == "lines":
        return LinesDriver(outbox, device=device, baud=baud)
    if kind == "tail":
        return TailDriver(
            outbox,
            path=Path(device),
            agent_name=agent_name,
            state_file=state_file,
            regex=tail_regex,
        )
    raise ValueError(f"no driver {kind!r}")
