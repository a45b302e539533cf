"""ID-Innovations ID-12 / ID-20 RFID readers, ASCII output: serial bytes in, token reads out.

A read is 16 bytes: STX, 10 hex digits of data (5 bytes), 2 hex digits of checksum (XOR of the
data bytes), CR LF, ETX. `Id12Decoder.feed` yields `TokenRead` or `BadFrame`; `encode_id12`
builds a read for tests and the simulator.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

STX = 0x02
ETX = 0x03
FRAME_LEN = 16  # STX + 10 data + 2 checksum + CR LF + ETX
DATA_CHARS = 10
TERMINATOR = b"\r\n\x03"
_HEX_DIGITS = frozenset(string.hexdigits.encode("ascii"))


@dataclass(frozen=True, slots=True)
class TokenRead:
    """A card was read: `token` is its 10 data hex digits, lower-case."""

    token: str


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame that started with STX but was wrong; `reason` is one of `truncated`,
    `bad_terminator`, `not_hex`, `bad_checksum`. `raw` holds the bytes dropped, STX first."""

    reason: str
    raw: bytes


Id12Event = TokenRead | BadFrame


# Theory of operation: bytes before an STX are line noise and are dropped. From an STX the
# frame has a fixed length, so we wait for 16 bytes; STX never occurs inside a good frame
# (hex digits, CR LF, ETX), so another STX before the 16th byte means this frame was cut
# short: it is reported as truncated and reading restarts at the new STX. Between feeds the
# buffer holds at most one partial frame (under 16 bytes).
class Id12Decoder:
    """Turns bytes from an ID-12 / ID-20 reader into events. Never raises on any input."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held of a frame not yet complete (always under 16)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Id12Event]:
        """The events completed by `data`, in order."""
        buf = self._buf
        buf += data
        events: list[Id12Event] = []
        pos = 0
        while True:
            start = buf.find(STX, pos)
            if start < 0:
                pos = len(buf)
                break
            next_stx = buf.find(STX, start + 1, start + FRAME_LEN)
            if next_stx >= 0:
                events.append(BadFrame("truncated", bytes(buf[start:next_stx])))
                pos = next_stx
                continue
            if len(buf) - start < FRAME_LEN:
                pos = start
                break
            pos = start + FRAME_LEN
            events.append(decode_frame(bytes(buf[start:pos])))
        del buf[:pos]
        return events


def decode_frame(frame: bytes) -> Id12Event:
    """One complete 16-byte frame starting with STX."""
    if frame[1 + DATA_CHARS + 2 :] != TERMINATOR:
        return BadFrame("bad_terminator", frame)
    digits = frame[1 : 1 + DATA_CHARS + 2]
    if not all(byte in _HEX_DIGITS for byte in digits):
        return BadFrame("not_hex", frame)
    data = bytes.fromhex(digits[:DATA_CHARS].decode("ascii"))
    if _xor(data) != int(digits[DATA_CHARS:], 16):
        return BadFrame("bad_checksum", frame)
    return TokenRead(data.hex())


def _xor(data: bytes) -> int:
    checksum = 0
    for byte in data:
        checksum ^= byte
    return checksum


def encode_id12(token_hex: str) -> bytes:
    """The frame a reader sends for `token_hex` (10 hex digits): upper-case, like the device."""
    if len(token_hex) != DATA_CHARS or not all(c in string.hexdigits for c in token_hex):
        raise ValueError(f"an ID-12 token is {DATA_CHARS} hex digits, not {token_hex!r}")
    data = bytes.fromhex(token_hex)
    body = f"{token_hex.upper()}{_xor(data):02X}".encode("ascii")
    return bytes((STX,)) + body + TERMINATOR
