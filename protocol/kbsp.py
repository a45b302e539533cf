"""Kegboard Serial Protocol v1 (KBSP): board frames in, typed messages out, commands back.

`KbspDecoder.feed(data)` returns the messages completed by `data`; `encode_*` build the host's
commands. Byte layout, CRC and resync rules: docs/kegboard.md.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

PREFIX = b"KBSP v1:"
TRAILER = b"\r\n"
MAX_PAYLOAD_RX = 240  # the firmware sends at most 112; accept more in case a build differs
MAX_PAYLOAD_TX = 112  # the firmware's receive buffer: never send more
HEADER_LEN = len(PREFIX) + 4  # prefix, message id u16, payload length u16
FOOTER_LEN = 4  # crc u16, trailer
MAX_FRAME_LEN = HEADER_LEN + MAX_PAYLOAD_RX + FOOTER_LEN

# Message ids, board → host.
HELLO = 0x01
METER_STATUS = 0x10
TEMPERATURE_READING = 0x11
OUTPUT_STATUS = 0x12
ONEWIRE_PRESENCE = 0x13
AUTH_TOKEN = 0x14
# Message ids, host → board.
PING = 0x81
SET_OUTPUT = 0x84
SET_SERIAL_NUMBER = 0x85

SERIAL_NUMBER_MAX_CHARS = 29  # firmware keeps a 30-byte NUL-terminated buffer
ONEWIRE_READER = "core.onewire"


def _kermit_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _kermit_table()


def crc16_kermit(data: bytes, crc: int = 0) -> int:
    """CRC-16/KERMIT (reflected 0x1021, init 0, no final xor); pass `crc` to continue a run."""
    table = _CRC_TABLE
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc


# --- messages -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """Boot message, ping answer and 10 s heartbeat; every field may be missing."""

    firmware_version: int | None
    protocol_version: int | None
    serial_number: str | None
    uptime_ms: int | None
    uptime_days: int | None


@dataclass(frozen=True, slots=True)
class MeterStatus:
    """A flow meter's running tick total (an odometer: the host computes deltas)."""

    meter: str
    ticks: int


@dataclass(frozen=True, slots=True)
class TemperatureReading:
    sensor: str
    celsius: float


@dataclass(frozen=True, slots=True)
class OutputStatus:
    output: str
    on: bool


@dataclass(frozen=True, slots=True)
class OnewirePresence:
    """Old firmware's 1-wire bus report. Without a status tag, `present` is `device_id != 0`:
    the firmware reports id 0 when nothing sits on the bus (the boot frame of the capture)."""

    device_id: int
    present: bool


@dataclass(frozen=True, slots=True)
class AuthToken:
    """A token at a reader: `token` is the bytes reversed, lower-case hex (Kegbot's form).
    Without a status tag the token counts as present (it was just read)."""

    reader: str
    token: str
    present: bool


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """A frame with a good CRC and a message id this module does not know."""

    message_id: int
    payload: bytes


KbspMessage = (
    Hello
    | MeterStatus
    | TemperatureReading
    | OutputStatus
    | OnewirePresence
    | AuthToken
    | UnknownMessage
)


# --- payload decoding -----------------------------------------------------------------------

Tags = dict[int, bytes]


def parse_tags(payload: bytes) -> Tags:
    """Tag-length-value records; a repeated tag keeps its last value; a truncated last record
    (its length runs past the payload) is ignored."""
    tags: Tags = {}
    pos, end = 0, len(payload)
    while pos + 2 <= end:
        tag, length = payload[pos], payload[pos + 1]
        start = pos + 2
        if start + length > end:
            break
        tags[tag] = payload[start : start + length]
        pos = start + length
    return tags


def _string(tags: Tags, tag: int) -> str | None:
    value = tags.get(tag)
    if value is None:
        return None
    return value.rstrip(b"\x00").decode("utf-8", errors="replace")


def _unsigned(tags: Tags, tag: int) -> int | None:
    value = tags.get(tag)
    return int.from_bytes(value, "little") if value else None


def _signed(tags: Tags, tag: int) -> int | None:
    value = tags.get(tag)
    return int.from_bytes(value, "little", signed=True) if value else None


def _hello(tags: Tags) -> Hello:
    return Hello(
        firmware_version=_unsigned(tags, 1),
        protocol_version=_unsigned(tags, 2),
        serial_number=_string(tags, 3),
        uptime_ms=_unsigned(tags, 4),
        uptime_days=_unsigned(tags, 5),
    )


def _meter_status(tags: Tags) -> MeterStatus | None:
    meter, ticks = _string(tags, 1), _unsigned(tags, 2)
    if not meter or ticks is None:
        return None
    return MeterStatus(meter, ticks)


def _temperature_reading(tags: Tags) -> TemperatureReading | None:
    sensor, micro_celsius = _string(tags, 1), _signed(tags, 2)
    if not sensor or micro_celsius is None:
        return None
    return TemperatureReading(sensor, micro_celsius / 1e6)


def _output_status(tags: Tags) -> OutputStatus | None:
    output, state = _string(tags, 1), tags.get(2)
    if not output or not state:
        return None
    return OutputStatus(output, state[0] != 0)  # 1 or 2 bytes: the first one counts


def _onewire_presence(tags: Tags) -> OnewirePresence | None:
    device_id, status = _unsigned(tags, 1), _unsigned(tags, 2)
    if device_id is None:
        return None
    present = device_id != 0 if status is None else status != 0
    return OnewirePresence(device_id, present)


def _auth_token(tags: Tags) -> AuthToken | None:
    device, token, status = _string(tags, 1), tags.get(2), _unsigned(tags, 3)
    if not device or not token:
        return None
    reader = ONEWIRE_READER if device == "onewire" else device
    return AuthToken(reader, token[::-1].hex(), status is None or status != 0)


_DECODERS: dict[int, Callable[[Tags], KbspMessage | None]] = {
    HELLO: _hello,
    METER_STATUS: _meter_status,
    TEMPERATURE_READING: _temperature_reading,
    OUTPUT_STATUS: _output_status,
    ONEWIRE_PRESENCE: _onewire_presence,
    AUTH_TOKEN: _auth_token,
}


def decode_payload(message_id: int, payload: bytes) -> KbspMessage | None:
    """The message in a checked frame's payload; None when a known message lacks a required
    tag (e.g. a meter_status without its reading)."""
    decoder = _DECODERS.get(message_id)
    if decoder is None:
        return UnknownMessage(message_id, bytes(payload))
    return decoder(parse_tags(payload))


# --- the reader -----------------------------------------------------------------------------


@dataclass(slots=True)
class KbspStats:
    """Counters for the device status page; they only ever grow."""

    frames_ok: int = 0  # trailer and CRC good (unknown and malformed messages included)
    crc_errors: int = 0  # whole frame read, CRC wrong
    framing_errors: int = 0  # length over MAX_PAYLOAD_RX, or trailer not CR LF
    bytes_skipped: int = 0  # bytes dropped outside good frames (noise, bad frames)
    unknown_messages: int = 0  # good frames with an unknown message id
    malformed_messages: int = 0  # good frames of a known id missing a required tag


# Theory of operation: the buffer always starts where the next frame may start. Each step
# looks for PREFIX (everything before it is skipped; with no prefix in sight only a tail that
# could be the start of one is kept). With a full header in hand the payload length gives the
# frame's end: too long a length means this was no header, so the prefix is dropped; otherwise
# we wait until the whole frame is buffered. Frames are found by LENGTH, never by searching for
# CR LF, because a payload or CRC may hold 0d 0a. A frame whose trailer or CRC is wrong loses
# only its first byte, so a real frame that began inside it is still found. The state is only
# the buffer, so any split of the input gives the same messages; the buffer never holds more
# than one frame (MAX_FRAME_LEN) between feeds.
class KbspDecoder:
    """Turns bytes from a Kegboard into messages. Never raises on any input."""

    __slots__ = ("_buf", "stats")

    def __init__(self) -> None:
        self._buf = bytearray()
        self.stats = KbspStats()

    @property
    def buffered(self) -> int:
        """Bytes held for a frame not yet complete (always under MAX_FRAME_LEN)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[KbspMessage]:
        """The messages completed by `data`, in order."""
        buf = self._buf
        buf += data
        messages: list[KbspMessage] = []
        pos = 0
        stats = self.stats
        while True:
            start = buf.find(PREFIX, pos)
            if start < 0:
                keep = _partial_prefix_len(buf, pos)
                stats.bytes_skipped += len(buf) - pos - keep
                pos = len(buf) - keep
                break
            stats.bytes_skipped += start - pos
            pos = start
            if len(buf) - pos < HEADER_LEN:
                break
            message_id, length = struct.unpack_from("<HH", buf, pos + len(PREFIX))
            if length > MAX_PAYLOAD_RX:
                stats.framing_errors += 1
                stats.bytes_skipped += len(PREFIX)
                pos += len(PREFIX)
                continue
            crc_end = pos + HEADER_LEN + length + 2
            end = crc_end + len(TRAILER)
            if len(buf) < end:
                break
            if buf[crc_end:end] != TRAILER:
                stats.framing_errors += 1
            elif crc16_kermit(bytes(buf[pos:crc_end])) != 0:
                stats.crc_errors += 1  # over data + its own LE CRC, KERMIT gives 0 when intact
            else:
                self._dispatch(message_id, bytes(buf[pos + HEADER_LEN : crc_end - 2]), messages)
                pos = end
                continue
            stats.bytes_skipped += 1
            pos += 1
        del buf[:pos]
        return messages

    def _dispatch(self, message_id: int, payload: bytes, messages: list[KbspMessage]) -> None:
        self.stats.frames_ok += 1
        message = decode_payload(message_id, payload)
        if message is None:
            self.stats.malformed_messages += 1
            return
        if isinstance(message, UnknownMessage):
            self.stats.unknown_messages += 1
        messages.append(message)


def _partial_prefix_len(buf: bytearray, pos: int) -> int:
    """Length of the longest tail of `buf[pos:]` that is a proper start of PREFIX."""
    for size in range(min(len(PREFIX) - 1, len(buf) - pos), 0, -1):
        if buf.endswith(PREFIX[:size]):
            return size
    return 0


# --- encoders -------------------------------------------------------------------------------


def encode_frame(message_id: int, tags: list[tuple[int, bytes]]) -> bytes:
    """One frame: prefix, id, length, TLV payload, CRC, trailer. A payload over
    MAX_PAYLOAD_TX (the firmware's buffer), a tag outside 0-255 or a value over 255 bytes:
    ValueError."""
    if not 0 <= message_id <= 0xFFFF:
        raise ValueError(f"message id {message_id} is not a u16")
    payload = bytearray()
    for tag, value in tags:
        if not 0 <= tag <= 0xFF:
            raise ValueError(f"tag {tag} is not a u8")
        if len(value) > 0xFF:
            raise ValueError(f"tag {tag}: value of {len(value)} bytes is over 255")
        payload += bytes((tag, len(value))) + value
    if len(payload) > MAX_PAYLOAD_TX:
        raise ValueError(f"payload of {len(payload)} bytes is over {MAX_PAYLOAD_TX}")
    frame = PREFIX + struct.pack("<HH", message_id, len(payload)) + payload
    return frame + struct.pack("<H", crc16_kermit(frame)) + TRAILER


def encode_ping() -> bytes:
    """Ask the board for a hello."""
    return encode_frame(PING, [])


def encode_set_output(output_id: int, on: bool) -> bytes:
    """Switch relay `output_id`; the board turns it off again unless this is repeated in 10 s."""
    if not 0 <= output_id <= 0xFF:
        raise ValueError(f"output id {output_id} is not a u8")
    return encode_frame(SET_OUTPUT, [(1, bytes((output_id,))), (2, b"\x01" if on else b"\x00")])


def encode_set_serial_number(serial: str) -> bytes:
    """Store a serial number on the board: 1-29 printable ASCII characters, sent NUL-ended
    (the firmware keeps a C string; readers strip trailing NULs anyway)."""
    if not 1 <= len(serial) <= SERIAL_NUMBER_MAX_CHARS or not (
        serial.isascii() and serial.isprintable()
    ):
        raise ValueError(f"serial number must be 1-{SERIAL_NUMBER_MAX_CHARS} printable ASCII")
    return encode_frame(SET_SERIAL_NUMBER, [(1, serial.encode("ascii") + b"\x00")])
