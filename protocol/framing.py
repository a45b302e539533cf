"""NDJSON line framing: split a byte stream into `\\n`-terminated lines, and back.

`LineDecoder` does no I/O: feed it the bytes you received, then take complete lines out with
`next_line()`. A line longer than the limit raises `LineTooLong` and the decoder stays failed.
"""

from __future__ import annotations

from typing import NoReturn

from protocol.errors import ErrorCode, ProtocolError

DEFAULT_MAX_LINE_BYTES = 1 << 20  # 1 MiB
# What a client (the dashboard, scripts) accepts from the master: its answers may be far longer
# than what it accepts (clients.list of 10,000 agents is 2 MB); its send queue (16 MiB by
# default) bounds them.
MAX_ANSWER_LINE_BYTES = 64 << 20


class LineTooLong(ProtocolError):
    """A line (complete or still arriving) exceeds the limit; the connection should be closed."""

    def __init__(self, limit: int) -> None:
        super().__init__(ErrorCode.TOO_LARGE, f"line longer than {limit} bytes", "line_too_long")
        self.limit = limit


class LineDecoder:
    """Splits received bytes into lines; the limit counts a line's bytes before its `\\n`.

    Theory of operation: `_buf[_start:]` holds the bytes not yet returned; `_scan` is where the
    next search for `\\n` starts, so a long partial line is scanned once, not on every feed.
    Consumed bytes are dropped lazily (on the next feed) so taking lines out costs no copy of
    the rest of the buffer.
    """

    __slots__ = ("_buf", "_failed", "_max", "_overflow", "_scan", "_start")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self._max = max_line_bytes
        self._buf = bytearray()
        self._start = 0
        self._scan = 0
        # _overflow: the partial line after the buffered complete lines is already too long;
        # its bytes were dropped and LineTooLong is raised once the complete lines are taken.
        self._overflow = False
        self._failed = False

    @property
    def limit(self) -> int:
        """The longest line allowed, in bytes before its `\\n`."""
        return self._max

    @property
    def buffered(self) -> int:
        """Bytes currently held (complete lines not yet taken plus the partial line)."""
        return len(self._buf) - self._start

    def feed(self, data: bytes) -> None:
        """Append received bytes. Never raises for bad input; `next_line()` reports it."""
        if self._failed or self._overflow or not data:
            return
        buf = self._buf
        if self._start:
            del buf[: self._start]
            self._scan -= self._start
            self._start = 0
        buf += data
        if len(buf) > self._max:
            # Keep memory bounded even if the caller feeds more before draining: drop a
            # trailing partial line as soon as it is longer than the limit.
            last_newline = buf.rfind(b"\n", self._scan)
            tail = last_newline + 1 if last_newline >= 0 else 0
            if len(buf) - tail > self._max:
                del buf[tail:]
                self._scan = min(self._scan, tail)
                self._overflow = True

    def next_line(self) -> bytes | None:
        """The next complete line without `\\n` (and without a trailing `\\r`), else None."""
        if self._failed:
            raise LineTooLong(self._max)
        buf = self._buf
        end = buf.find(b"\n", self._scan)
        if end < 0:
            if self._overflow or len(buf) - self._start > self._max:
                self._fail()
            self._scan = len(buf)
            return None
        start = self._start
        if end - start > self._max:
            self._fail()
        stop = end - 1 if end > start and buf[end - 1] == 0x0D else end
        line = bytes(buf[start:stop])
        if end + 1 == len(buf):
            buf.clear()
            self._start = self._scan = 0
        else:
            self._start = self._scan = end + 1
        return line

    def _fail(self) -> NoReturn:
        self._failed = True
        self._buf = bytearray()
        self._start = self._scan = 0
        raise LineTooLong(self._max)


def encode_line(payload: bytes) -> bytes:
    """`payload` framed as one line. A payload with `\\n` in it would split: ValueError."""
    if b"\n" in payload:
        raise ValueError("a line payload must not contain b'\\n'")
    return bytes(payload) + b"\n"
