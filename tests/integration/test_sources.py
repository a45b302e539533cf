"""Device sources without the master: the serial source against loop://, a pty and socket://
(bytes in and out, reopening when the device goes away), the file follower on real files
(rotation, truncation, the state file), and the hardware agent's report outbox.

Serial tests run the source in a greenlet of this process; they wait with `gwait_for`, which
sleeps through gevent so the source gets to run. The pty's far end is
farmhand.hardware.kegsim.PtyDevice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gevent
import pytest
from gevent.server import StreamServer

from farmhand.hardware.kegsim import PtyDevice
from farmhand.hardware.serialsource import DeviceOffline, SerialSource
from farmhand.hardware.service import ReportOutbox
from farmhand.hardware.tailsource import TailFollower
from protocol.backoff import Backoff

pytestmark = pytest.mark.timeout(30)


def gwait_for(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        gevent.sleep(0.01)


class Recorder:
    """A SerialSource's callbacks, recorded."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.events: list[str] = []

    def on_data(self, data: bytes) -> None:
        self.data += data

    def on_open(self) -> None:
        self.events.append("open")

    def on_close(self, reason: str) -> None:
        self.events.append(f"close: {reason}")

    def count(self, prefix: str) -> int:
        return sum(event.startswith(prefix) for event in self.events)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def start_source(url: str, recorder: Recorder, **kwargs: Any) -> tuple[SerialSource, Any]:
    source = SerialSource(
        url,
        115200,
        on_data=recorder.on_data,
        on_open=recorder.on_open,
        on_close=recorder.on_close,
        backoff=Backoff(initial_s=0.05, maximum_s=0.2),
        **kwargs,
    )
    return source, gevent.spawn(source.run)


def stop_source(source: SerialSource, greenlet: Any) -> None:
    source.stop()
    greenlet.join(timeout=5)
    assert greenlet.dead


# -- the serial source ------------------------------------------------------------------------


def test_loop_url_echoes_written_bytes_without_a_file_descriptor(recorder: Recorder) -> None:
    source, greenlet = start_source("loop://", recorder)
    try:
        gwait_for(lambda: source.online, what="loop:// open")
        source.write(b"KBSP v1:\x81\x00")
        source.write(b"\r\n" * 3)
        gwait_for(lambda: bytes(recorder.data) == b"KBSP v1:\x81\x00\r\n\r\n\r\n", what="echo")
        assert recorder.events == ["open"]
    finally:
        stop_source(source, greenlet)
    assert recorder.events == ["open", "close: stopped"]


def test_a_failing_consumer_does_not_take_the_device_offline(recorder: Recorder) -> None:
    seen: list[bytes] = []

    def fragile(data: bytes) -> None:
        seen.append(data)
        if data.startswith(b"boom"):
            raise ValueError("driver bug")

    recorder.on_data = fragile  # type: ignore[method-assign]
    source, greenlet = start_source("loop://", recorder)
    try:
        gwait_for(lambda: source.online)
        source.write(b"boom")
        gwait_for(lambda: seen == [b"boom"])
        source.write(b"fine")
        gwait_for(lambda: seen == [b"boom", b"fine"])
        assert source.online and recorder.events == ["open"]
    finally:
        stop_source(source, greenlet)


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[PtyDevice]:
    device = PtyDevice(tmp_path / "ttyKEG")
    device.open_pty()
    yield device
    device.close_pty()


def read_pty(device: PtyDevice, size: int) -> bytes:
    data = b""
    deadline = time.monotonic() + 5
    while len(data) < size and time.monotonic() < deadline:
        data += device.receive(0)
        gevent.sleep(0.01)
    return data


def test_pty_bytes_both_ways_and_reopen_after_unplug(pty: PtyDevice, recorder: Recorder) -> None:
    source, greenlet = start_source(str(pty.link), recorder)
    try:
        gwait_for(lambda: source.online, what="pty open")
        pty.send(b"hello \x00\xff\r\n")
        gwait_for(lambda: bytes(recorder.data) == b"hello \x00\xff\r\n", what="bytes in")
        source.write(b"\x02ping\x03")
        assert read_pty(pty, 6) == b"\x02ping\x03"

        pty.close_pty()  # the cable is pulled: reads fail, the symlink is gone
        gwait_for(lambda: recorder.count("close: lost") == 1, what="device lost")
        assert not source.online
        with pytest.raises(DeviceOffline):
            source.write(b"nobody")

        pty.open_pty()  # a new pty behind the same path
        gwait_for(lambda: recorder.count("open") == 2, what="device reopened")
        pty.send(b"again")
        gwait_for(lambda: bytes(recorder.data).endswith(b"again"), what="bytes after reopen")
    finally:
        stop_source(source, greenlet)


def test_a_device_missing_at_start_is_opened_when_it_appears(
    tmp_path: Path, recorder: Recorder
) -> None:
    device = PtyDevice(tmp_path / "ttyLATE")
    source, greenlet = start_source(str(device.link), recorder)
    try:
        gevent.sleep(0.3)  # a few failed opens, with backoff
        assert recorder.events == [] and greenlet.dead is False
        device.open_pty()
        gwait_for(lambda: source.online, what="late device open")
        device.send(b"x")
        gwait_for(lambda: recorder.data == b"x")
    finally:
        stop_source(source, greenlet)
        device.close_pty()


def test_a_missing_device_logs_one_line_per_failed_open_and_no_traceback(
    tmp_path: Path, recorder: Recorder, caplog: pytest.LogCaptureFixture, capfd: Any
) -> None:
    # Issue 10 finding 8: gevent's thread pool printed a 20-line traceback for every failed open.
    caplog.set_level(logging.DEBUG, logger="farmhand.hardware.serialsource")
    source, greenlet = start_source(str(tmp_path / "ttyGONE"), recorder)

    def failed_opens() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "cannot open" in r.getMessage()]

    try:
        gwait_for(lambda: len(failed_opens()) >= 4, what="four failed opens")
    finally:
        stop_source(source, greenlet)
    assert "Traceback" not in capfd.readouterr().err
    records = failed_opens()
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in records)
    # The first failure is a warning; the repeats are one debug line each until the summary.
    assert [r.levelno for r in records[:4]] == [logging.WARNING] + [logging.DEBUG] * 3


def test_socket_url_reconnects_after_the_peer_closes(recorder: Recorder) -> None:
    peers: list[Any] = []

    def handle(sock: Any, _address: Any) -> None:
        # No greeting: pyserial's open() drops input that arrives while it connects.
        peers.append(sock)
        with contextlib.suppress(OSError):  # the test closes the first one under us
            while data := sock.recv(100):
                sock.sendall(b"echo:" + data)

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    source, greenlet = start_source(f"socket://127.0.0.1:{server.server_port}", recorder)
    try:
        gwait_for(lambda: source.online, what="first connection")
        source.write(b"hi")
        gwait_for(lambda: b"echo:hi" in recorder.data)
        peers[0].shutdown(socket.SHUT_RDWR)
        peers[0].close()
        gwait_for(lambda: recorder.count("open") == 2 and source.online, what="reconnect")
        assert recorder.count("close: lost") == 1 and len(peers) == 2
        source.write(b"again")
        gwait_for(lambda: b"echo:again" in recorder.data, what="echo after reconnect")
    finally:
        stop_source(source, greenlet)
        server.stop()


# -- the file follower ------------------------------------------------------------------------


def append(path: Path, text: str) -> None:
    with path.open("a") as out:
        out.write(text)


def drain(follower: TailFollower, polls: int = 5) -> list[str]:
    """Everything the follower has now (a few polls: rotation takes one of its own)."""
    lines: list[str] = []
    for _ in range(polls):
        lines += follower.poll()
    return lines


def test_tail_delivers_complete_lines_only(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("one\ntwo\r\nthr")
    follower = TailFollower(log, tmp_path / "state")
    assert drain(follower) == ["one", "two"]
    append(log, "ee\n\xe9t\xe9\n")
    assert drain(follower) == ["three", "été"]


def test_tail_waits_for_a_missing_file(tmp_path: Path) -> None:
    log = tmp_path / "later.log"
    follower = TailFollower(log, None)
    assert drain(follower) == [] and follower.position is None
    log.write_text("here\n")
    assert drain(follower) == ["here"]


def test_tail_follows_rotation_without_losing_or_repeating(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a1\na2\n")
    follower = TailFollower(log, tmp_path / "state")
    got = drain(follower)
    append(log, "a3\na4-unfinished")  # written before the writer lets go of the old file
    log.rename(tmp_path / "app.log.1")
    got += drain(follower)
    assert got[-1] == "a3"  # the new file does not exist yet: the unfinished line waits
    log.write_text("b1\n")
    append(log, "b2\n")
    got += drain(follower)
    assert got == ["a1", "a2", "a3", "a4-unfinished", "b1", "b2"]


def test_tail_restarts_from_zero_after_truncation(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("old line 1\nold line 2\n")
    follower = TailFollower(log, tmp_path / "state")
    assert drain(follower) == ["old line 1", "old line 2"]
    with log.open("r+") as out:
        out.truncate(0)
    assert drain(follower) == []
    append(log, "new\n")
    assert drain(follower) == ["new"]


def test_tail_state_file_resumes_exactly_where_it_was_committed(tmp_path: Path) -> None:
    log, state = tmp_path / "app.log", tmp_path / "var" / "tail.state"
    log.write_text("1\n2\n")
    first = TailFollower(log, state)
    assert drain(first) == ["1", "2"]
    first.commit()
    append(log, "3\n")
    assert drain(first) == ["3"]  # read but never committed (not delivered)
    first.close()
    assert not list(state.parent.glob("*.tmp"))

    second = TailFollower(log, state)
    assert drain(second) == ["3"]  # not delivered before: read again, nothing skipped
    second.commit()
    second.close()
    append(log, "4\n")
    third = TailFollower(log, state)
    assert drain(third) == ["4"]


def test_tail_rotated_while_stopped_reads_the_old_file_rest_first(tmp_path: Path) -> None:
    log, state = tmp_path / "app.log", tmp_path / "tail.state"
    log.write_text("a1\n")
    first = TailFollower(log, state)
    assert drain(first) == ["a1"]
    first.commit()
    first.close()
    append(log, "a2\n")
    log.rename(tmp_path / "app.log.1")
    log.write_text("b1\n")
    second = TailFollower(log, state)
    assert drain(second) == ["a2", "b1"]


def test_tail_with_a_broken_state_file_starts_from_the_beginning(tmp_path: Path) -> None:
    log, state = tmp_path / "app.log", tmp_path / "tail.state"
    log.write_text("x\n")
    state.write_text("{not json")
    follower = TailFollower(log, state)
    assert drain(follower) == ["x"]
    follower.commit()
    assert '"offset": 2' in state.read_text()
    assert os.stat(log).st_ino == follower.position.inode  # type: ignore[union-attr]


# -- the report outbox ------------------------------------------------------------------------


def test_outbox_drops_the_oldest_readings_but_never_tokens() -> None:
    outbox = ReportOutbox(capacity=5)
    outbox.token("core.rfid", "aa", True)
    for i in range(10):
        outbox.reading("t", "temperature", float(i), "C")
    outbox.token("core.rfid", "aa", False)
    assert outbox.pending == 5 and outbox.dropped_total == 7
    queued = list(outbox._keep) + list(outbox._bulk)
    assert [r.params.get("value") for r in queued if r.method == "reading"] == [7.0, 8.0, 9.0]
    assert [r.params["present"] for r in queued if r.method == "token.update"] == [True, False]
    assert outbox.wait_delivered(0.01) is False


def test_outbox_keeps_only_the_latest_status_of_a_device() -> None:
    outbox = ReportOutbox()
    for online in (True, False, True, False):
        outbox.device_status("/dev/ttyACM0", online, {})
    outbox.device_status("/dev/ttyACM1", True, {})
    assert [(r.params["device"], r.params["online"]) for r in outbox._keep] == [
        ("/dev/ttyACM0", False),
        ("/dev/ttyACM1", True),
    ]
