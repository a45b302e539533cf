"""A serial device as a gevent byte source: open any pyserial URL, read without blocking the hub,
write with a deadline, and reopen with backoff whenever the device goes away.

Ports with a file descriptor (a tty, a pty, `socket://`) are waited on with gevent's select;
URLs without one (`loop://`) are polled with a short gevent.sleep. Callbacks run in the
source's greenlet: `on_open()`, `on_data(bytes)`, `on_close(reason)`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.select
import serial
from gevent.event import Event
from gevent.lock import BoundedSemaphore

from protocol.backoff import Backoff

log = logging.getLogger(__name__)

READ_CHUNK = 4096
# How often the read loop looks at `stop()` while the device is silent.
WAIT_S = 0.5
# URLs without a file descriptor (loop://) are polled this often.
POLL_S = 0.01
WRITE_TIMEOUT_S = 2.0
# While a device cannot be opened, one WARNING line sums up the failed attempts this often.
OPEN_FAILURE_SUMMARY_S = 60.0

PortOpener = Callable[..., Any]


class DeviceOffline(Exception):
    """The device is not open (unplugged, not yet opened, or a write timed out)."""


def open_port(url: str, baudrate: int) -> Any:
    """The pyserial port for `url`, non-blocking in both directions."""
    port = serial.serial_for_url(url, baudrate=baudrate, timeout=0, write_timeout=0)
    if port_fileno(port) is None:
        # loop:// refuses every write with a zero write timeout (it simulates the baud rate)
        # and cannot be waited on: give it a bounded one. Such URLs are test devices.
        port.write_timeout = WRITE_TIMEOUT_S
    return port


def port_fileno(port: Any) -> int | None:
    """The port's file descriptor, or None when it has none (loop://)."""
    try:
        fileno = port.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fileno if isinstance(fileno, int) and fileno >= 0 else None


class SerialSource:
    def __init__(
        self,
        url: str,
        baudrate: int,
        *,
        on_data: Callable[[bytes], None],
        on_open: Callable[[], None] | None = None,
        on_close: Callable[[str], None] | None = None,
        backoff: Backoff | None = None,
        opener: PortOpener = open_port,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.on_data = on_data
        self.on_open = on_open or (lambda: None)
        self.on_close = on_close or (lambda reason: None)
        self.backoff = backoff or Backoff(initial_s=0.2, maximum_s=5.0)
        self.opener = opener
        self.opened = Event()
        self._port: Any = None
        self._fileno: int | None = None
        self._write_lock = BoundedSemaphore()
        self._stopping = Event()

    @property
    def online(self) -> bool:
        return self._port is not None

    def run(self) -> None:
        """Open, read, reopen, until stop()."""
        failures = OpenFailures(self.url)
        while not self._stopping.is_set():
            # In a thread: opening socket:// connects with a blocking stdlib socket (up to
            # 5 s), and a tty's open may stall on a sick USB adapter; the hub must not wait.
            port, error = gevent.get_hub().threadpool.apply(
                _open_quietly, (self.opener, self.url, self.baudrate)
            )
            if error is not None:
                failures.failed(_describe(error), time.monotonic())
                self._stopping.wait(self.backoff.next_delay())
                continue
            failures.opened(time.monotonic())
            reason = self._session(port)
            if self._stopping.is_set():
                break
            log.warning("device %s: %s; reopening", self.url, reason)
            self._stopping.wait(self.backoff.next_delay())
        log.info("device %s: source stopped", self.url)

    def stop(self) -> None:
        self._stopping.set()

    def _session(self, port: Any) -> str:
        self._port, self._fileno = port, port_fileno(port)
        self.opened.set()
        log.info(
            "device %s: open (%s)",
            self.url,
            "polled" if self._fileno is None else f"fd {self._fileno}",
        )
        reason = "stopped"
        try:
            self.on_open()
            reason = self._read_until_closed(port)
        finally:
            self._port, self._fileno = None, None
            self.opened.clear()
            # The device may already be gone: closing is best effort.
            with contextlib.suppress(OSError, serial.SerialException):
                port.close()
            self.on_close(reason)
        return reason

    def _read_until_closed(self, port: Any) -> str:
        fileno = self._fileno
        while not self._stopping.is_set():
            if fileno is not None:
                readable, _, _ = gevent.select.select([fileno], [], [], WAIT_S)
                if not readable:
                    continue
            try:
                data = port.read(READ_CHUNK)
            except (OSError, serial.SerialException, TypeError) as exc:
                # pyserial raises TypeError from inside read() when the port was closed under it.
                return f"lost ({_describe(exc)})"
            if data:
                self.backoff.reset()
                self._deliver(bytes(data))
            elif fileno is None:
                gevent.sleep(POLL_S)
            else:
                # Readable with nothing to read: the other end is gone (a socket's EOF).
                return "lost (end of file)"
        return "stopped"

    def _deliver(self, data: bytes) -> None:
        try:
            self.on_data(data)
        except Exception:
            # A driver bug must not take the device offline: log it and keep reading.
            log.exception("device %s: handling %d bytes failed", self.url, len(data))

    def write(self, data: bytes, timeout_s: float = WRITE_TIMEOUT_S) -> None:
        """Write all of `data` within timeout_s; DeviceOffline if the device is not open, fails
        or does not take the bytes in time."""
        with self._write_lock:
            port, fileno = self._port, self._fileno
            if port is None:
                raise DeviceOffline(f"device {self.url} is not open")
            deadline = time.monotonic() + timeout_s
            view = memoryview(data)
            try:
                while view:
                    if fileno is not None:
                        left = deadline - time.monotonic()
                        _, writable, _ = gevent.select.select([], [fileno], [], max(0.0, left))
                        if not writable:
                            raise DeviceOffline(f"device {self.url}: write timed out")
                    written = port.write(bytes(view))
                    view = view[written or 0 :]
                    if view and fileno is None:
                        gevent.sleep(POLL_S)
            except (OSError, serial.SerialException, TypeError) as exc:
                raise DeviceOffline(f"device {self.url}: write failed: {_describe(exc)}") from exc


class OpenFailures:
    """The failed opens of one device, logged without flooding: the first as a WARNING, each
    repeat as one DEBUG line, a WARNING summary every `summary_s` while it lasts, and one INFO
    line when the device opens again. Time is passed in."""

    def __init__(self, url: str, summary_s: float = OPEN_FAILURE_SUMMARY_S) -> None:
        self.url = url
        self.summary_s = summary_s
        self.count = 0
        self._first_at = 0.0
        self._summary_at = 0.0
        self._since_summary = 0

    def failed(self, error: str, now: float) -> None:
        self.count += 1
        self._since_summary += 1
        if self.count == 1:
            self._first_at = self._summary_at = now
            self._since_summary = 0
            log.warning("device %s: cannot open: %s (retrying)", self.url, error)
        elif now - self._summary_at >= self.summary_s:
            log.warning(
                "device %s: still cannot open: %d failed attempt(s) in the last %.0fs, "
                "%d since %.0fs ago; last error: %s",
                self.url,
                self._since_summary,
                now - self._summary_at,
                self.count,
                now - self._first_at,
                error,
            )
            self._summary_at = now
            self._since_summary = 0
        else:
            log.debug("device %s: cannot open (attempt %d): %s", self.url, self.count, error)

    def opened(self, now: float) -> None:
        if self.count:
            log.info(
                "device %s: opened after %d failed attempt(s) over %.1fs",
                self.url,
                self.count,
                now - self._first_at,
            )
        self.count = 0


def _open_quietly(opener: PortOpener, url: str, baudrate: int) -> tuple[Any, BaseException | None]:
    """The opener's port, or the error it raised as a value: an exception raised inside gevent's
    thread pool is printed with its whole traceback, ~20 lines for each retry of a missing port."""
    try:
        return opener(url, baudrate), None
    except (OSError, ValueError, serial.SerialException) as exc:
        return None, exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
