"""Operator console input: raw bytes from a telnet or nc peer in, command-line events out.

`ConsoleInput.feed(data)` strips telnet negotiation, applies backspace, and yields `Line`,
`Interrupt` (Ctrl-C) and `EndOfInput` (Ctrl-D) events in order. `encode_output` goes the other way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocol.framing import DEFAULT_MAX_LINE_BYTES, LineTooLong

# Telnet command bytes (RFC 854, RFC 1184 for EOF).
IAC = 255
DONT = 254
DO = 253
WONT = 252
WILL = 251
SB = 250
GA = 249
EL = 248
EC = 247
AYT = 246
AO = 245
IP = 244
BRK = 243
DM = 242
NOP = 241
SE = 240
ABORT = 238
SUSP = 237
EOF = 236

CTRL_C = 0x03
CTRL_D = 0x04
BACKSPACE = 0x08
DELETE = 0x7F
TAB = 0x09
CR = 0x0D
LF = 0x0A
NUL = 0x00


@dataclass(frozen=True, slots=True)
class Line:
    text: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    pass


@dataclass(frozen=True, slots=True)
class EndOfInput:
    pass


ConsoleEvent = Line | Interrupt | EndOfInput

# Theory of operation: two layers. The telnet layer is a small state machine over raw bytes
# (_DATA, after IAC, waiting for an option byte, inside SB, after IAC inside SB); it passes
# data bytes and commands to the line layer, which keeps the current line and one flag:
# "a CR was seen", because only the next data byte tells whether CR ended the line alone.
# Both layers keep all their state in the object, so any split of the input gives the same
# events. Telnet commands between CR and LF (IAC NOP, negotiation) do not break the pair.
_DATA, _COMMAND, _OPTION, _SUB, _SUB_IAC = range(5)
_NEGOTIATION = frozenset((WILL, WONT, DO, DONT))
# A run of bytes that are plain line content: no control bytes (TAB is content), no IAC.
_PLAIN_RUN = re.compile(rb"[^\x00-\x08\x0a-\x1f\x7f\xff]+")


class ConsoleInput:
    """Turns console bytes into events. After `LineTooLong` the input is failed for good."""

    __slots__ = ("_cr_pending", "_failed", "_line", "_max", "_state")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._line = bytearray()
        self._state = _DATA
        self._cr_pending = False
        self._failed = False

    @property
    def buffered(self) -> int:
        """Bytes of the current, unfinished line."""
        return len(self._line)

    def feed(self, data: bytes) -> list[ConsoleEvent]:
        """Events completed by `data`. Raises `LineTooLong` once the current line is too long;
        events earlier in the same chunk are then lost (the connection is closed anyway)."""
        if self._failed:
            raise LineTooLong(self._max)
        events: list[ConsoleEvent] = []
        i, n = 0, len(data)
        while i < n:
            state = self._state
            if state == _DATA and not self._cr_pending:
                # Fast path: copy a whole run of ordinary bytes at once.
                run = _PLAIN_RUN.match(data, i)
                if run is not None:
                    self._append(data[i : run.end()])
                    i = run.end()
                    continue
            byte = data[i]
            i += 1
            if state == _DATA:
                if byte == IAC:
                    self._state = _COMMAND
                else:
                    self._data_byte(byte, events)
            elif state == _COMMAND:
                self._state = _DATA
                self._command(byte, events)
            elif state == _OPTION:
                self._state = _DATA  # the option byte of WILL/WONT/DO/DONT: dropped
            elif state == _SUB:
                if byte == IAC:
                    self._state = _SUB_IAC
            else:  # _SUB_IAC: IAC SE ends the subnegotiation; IAC IAC is an escaped 255
                self._state = _DATA if byte == SE else _SUB
        return events

    def _command(self, byte: int, events: list[ConsoleEvent]) -> None:
        if byte == IAC:
            self._data_byte(IAC, events)
        elif byte in _NEGOTIATION:
            self._state = _OPTION
        elif byte == SB:
            self._state = _SUB
        elif byte in (IP, BRK, ABORT):
            self._event(Interrupt(), events)
        elif byte == EOF:
            self._event(EndOfInput(), events)
        elif byte == EC:
            self._end_pending_line(events)
            self._erase_char()
        elif byte == EL:
            self._end_pending_line(events)
            self._line.clear()
        # Any other command (NOP, DM, GA, AYT, AO, SUSP, unknown) is dropped.

    def _data_byte(self, byte: int, events: list[ConsoleEvent]) -> None:
        if self._cr_pending:
            self._end_pending_line(events)
            if byte in (LF, NUL):
                return  # CR LF and CR NUL are one line ending
        if byte == CR:
            self._cr_pending = True
        elif byte == LF:
            events.append(self._take_line())
        elif byte in (BACKSPACE, DELETE):
            self._erase_char()
        elif byte == CTRL_C:
            self._event(Interrupt(), events)
        elif byte == CTRL_D:
            self._event(EndOfInput(), events)
        elif byte >= 0x20 or byte == TAB:
            self._append(bytes((byte,)))
        # Other control bytes (bell, escape, ...) are dropped.

    def _event(self, event: Interrupt | EndOfInput, events: list[ConsoleEvent]) -> None:
        # Ctrl-C / Ctrl-D abandon what was typed on the current line, like a shell prompt.
        self._end_pending_line(events)
        self._line.clear()
        events.append(event)

    def _end_pending_line(self, events: list[ConsoleEvent]) -> None:
        if self._cr_pending:
            self._cr_pending = False
            events.append(self._take_line())

    def _take_line(self) -> Line:
        text = self._line.decode("utf-8", errors="replace")
        self._line.clear()
        return Line(text)

    def _append(self, chunk: bytes) -> None:
        if len(self._line) + len(chunk) > self._max:
            self._failed = True
            self._line = bytearray()
            raise LineTooLong(self._max)
        self._line += chunk

    def _erase_char(self) -> None:
        """Erase the last character: a whole UTF-8 sequence, or one byte if it is not one."""
        line = self._line
        end = len(line)
        if not end:
            return
        start = end - 1
        while start > 0 and end - start < 4 and 0x80 <= line[start] < 0xC0:
            start -= 1
        if line[start] < 0xC0:  # no lead byte before the continuation bytes
            start = end - 1
        del line[start:]


def encode_output(text: str) -> bytes:
    """Text for the console peer: newlines as CR LF, IAC bytes doubled (telnet NVT)."""
    normalized = text.replace("\r\n", "\n").replace("\n", "\r\n")
    return normalized.encode("utf-8", errors="replace").replace(b"\xff", b"\xff\xff")
