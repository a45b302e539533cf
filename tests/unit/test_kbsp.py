"""KBSP v1: CRC, the real capture, Kegbot's vectors, resync after corruption, message decoding
and the host's encoders."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.kbsp import (
    MAX_FRAME_LEN,
    MAX_PAYLOAD_TX,
    PREFIX,
    AuthToken,
    Hello,
    KbspDecoder,
    KbspMessage,
    MeterStatus,
    OnewirePresence,
    OutputStatus,
    TemperatureReading,
    UnknownMessage,
    crc16_kermit,
    encode_frame,
    encode_ping,
    encode_set_output,
    encode_set_serial_number,
    parse_tags,
)

CAPTURE = (Path(__file__).parent.parent / "data" / "one_flow_active.bin").read_bytes()

# From Kegbot's protocol document (valid CRCs).
HELLO_FW3 = bytes.fromhex("4b4253502076313a01000400010203002e540d0a")
METER_FLOW1_4 = bytes.fromhex("4b4253502076313a10000e000106666c6f773100020404000000550a0d0a")
# From Kegbot's own Python unit test: the same hello with a WRONG CRC (3f29, should be 2e54).
HELLO_BAD_CRC = bytes.fromhex("4b4253502076313a01000400010203003f290d0a")


def reference_crc(data: bytes) -> int:
    """Bit-by-bit CRC-16/KERMIT, written independently of the table-driven one."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


def frame(message_id: int, *tags: tuple[int, bytes]) -> bytes:
    return encode_frame(message_id, list(tags))


def meter(name: str, ticks: int) -> bytes:
    return frame(0x10, (1, name.encode()), (2, struct.pack("<I", ticks)))


def decode(data: bytes, chunk: int | None = None) -> tuple[list[KbspMessage], KbspDecoder]:
    decoder = KbspDecoder()
    if chunk is None:
        return decoder.feed(data), decoder
    messages: list[KbspMessage] = []
    for i in range(0, len(data), chunk):
        messages += decoder.feed(data[i : i + chunk])
    return messages, decoder


# --- CRC ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "crc"),
    [
        (b"123456789", 0x2189),
        (bytes((1, 2, 3, 4)), 0xC54F),
        (b"KBSP v1:", 0xE3AF),
        (b"", 0),
    ],
)
def test_crc_check_values(data: bytes, crc: int) -> None:
    assert crc16_kermit(data) == crc
    assert reference_crc(data) == crc


@pytest.mark.parametrize("vector", [HELLO_FW3, METER_FLOW1_4])
def test_crc_over_a_frame_including_its_crc_is_zero(vector: bytes) -> None:
    assert crc16_kermit(vector[:-2]) == 0
    assert struct.unpack("<H", vector[-4:-2])[0] == crc16_kermit(vector[:-4])


@given(st.binary(max_size=64), st.binary(max_size=64))
def test_crc_matches_reference_and_continues(a: bytes, b: bytes) -> None:
    assert crc16_kermit(a + b) == reference_crc(a + b) == crc16_kermit(b, crc16_kermit(a))


# --- the real capture -----------------------------------------------------------------------

CAPTURE_EXPECTED: list[KbspMessage] = [
    Hello(3, None, None, None, None),
    OnewirePresence(device_id=0, present=False),
    *(MeterStatus("flow1", ticks) for ticks in range(4, 89, 4)),
]


@pytest.mark.parametrize("chunk", [None, 1, 76])
def test_capture_decodes_exactly(chunk: int | None) -> None:
    assert len(CAPTURE) == 684
    messages, decoder = decode(CAPTURE, chunk)
    assert messages == CAPTURE_EXPECTED
    assert len(messages) == 24
    assert decoder.stats.frames_ok == 24
    assert decoder.stats.crc_errors == 0
    assert decoder.stats.framing_errors == 0
    assert decoder.stats.bytes_skipped == 0
    assert decoder.buffered == 0


# --- Kegbot's vectors -----------------------------------------------------------------------


def test_hello_vector() -> None:
    assert decode(HELLO_FW3)[0] == [Hello(3, None, None, None, None)]


def test_meter_vector_with_nul_terminated_name() -> None:
    assert decode(METER_FLOW1_4)[0] == [MeterStatus("flow1", 4)]


def test_wrong_crc_vector_from_kegbots_test_is_dropped() -> None:
    messages, decoder = decode(HELLO_BAD_CRC + HELLO_FW3)
    assert messages == [Hello(3, None, None, None, None)]
    assert decoder.stats.crc_errors == 1
    assert decoder.stats.frames_ok == 1
    assert decoder.stats.bytes_skipped == len(HELLO_BAD_CRC)


# --- corruption and resync ------------------------------------------------------------------


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes((data[index] ^ 0xFF,)) + data[index + 1 :]


GOOD_A, GOOD_B = meter("flow0", 10), meter("flow0", 11)


@pytest.mark.parametrize(
    ("stream", "counter"),
    [
        (GOOD_A + flip(meter("flow0", 99), 20) + GOOD_B, "crc_errors"),
        (GOOD_A + flip(meter("flow0", 99), -4) + GOOD_B, "crc_errors"),
        (GOOD_A + meter("flow0", 99)[:-2] + b"\n\r" + GOOD_B, "framing_errors"),
        (GOOD_A + PREFIX + b"\x10\x00\xff\xff" + GOOD_B, "framing_errors"),
        (GOOD_A + PREFIX + b"\x10\x00\xf0\x00" + GOOD_B * 10, "bad_frames"),
        (GOOD_A + b"\x00garbage\r\nKBSP v0:KBS" + GOOD_B, "bytes_skipped"),
        (GOOD_A + meter("flow0", 99)[:-6] + GOOD_B + GOOD_B, "bad_frames"),
        (GOOD_A + meter("flow0", 99)[:14] + GOOD_B + GOOD_B, "bad_frames"),
    ],
    ids=[
        "bad-crc-in-payload",
        "bad-crc-bytes",
        "bad-trailer",
        "huge-length",
        "length-over-following-frames",
        "garbage-between",
        "truncated-then-good",
        "truncated-header-then-good",
    ],
)
def test_good_frames_survive_corruption(stream: bytes, counter: str) -> None:
    for chunk in (None, 1, 7):
        messages, decoder = decode(stream, chunk)
        assert messages[0] == MeterStatus("flow0", 10)
        assert MeterStatus("flow0", 11) in messages
        assert MeterStatus("flow0", 99) not in messages
        stats = decoder.stats
        bad_frames = stats.crc_errors + stats.framing_errors  # a cut frame fails either check
        assert (bad_frames if counter == "bad_frames" else getattr(stats, counter)) >= 1


def test_leading_garbage_and_partial_prefix_are_handled() -> None:
    decoder = KbspDecoder()
    assert decoder.feed(b"noise noise KBS") == []
    assert decoder.buffered == 3  # "KBS" may start a frame
    assert decoder.feed(b"P v1") == []
    assert decoder.feed(HELLO_FW3[7:]) == [Hello(3, None, None, None, None)]
    assert decoder.stats.bytes_skipped == len(b"noise noise ")


def test_crlf_inside_payload_and_crc_does_not_split_frames() -> None:
    reading_2573 = meter("flow0", 2573)  # the reading is 0d 0a 00 00
    assert b"\r\n" in reading_2573[12:-4]
    crc_is_crlf = meter("flow0", 20171)
    assert crc_is_crlf[-4:] == b"\r\n\r\n"
    for chunk in (None, 1, 3):
        messages, decoder = decode(reading_2573 + crc_is_crlf + reading_2573, chunk)
        assert messages == [
            MeterStatus("flow0", 2573),
            MeterStatus("flow0", 20171),
            MeterStatus("flow0", 2573),
        ]
        assert decoder.stats.crc_errors == decoder.stats.bytes_skipped == 0


def test_buffer_stays_bounded() -> None:
    decoder = KbspDecoder()
    decoder.feed(bytes(range(256)) * 100)
    assert decoder.buffered < len(PREFIX)
    decoder.feed(PREFIX + b"\x10\x00\xf0\x00" + b"\x00" * 200)  # waiting for a 240-byte payload
    assert decoder.buffered < MAX_FRAME_LEN
    decoder.feed(b"\x00" * 1000)
    assert decoder.buffered < len(PREFIX)


# --- message decoding -----------------------------------------------------------------------


def micro(value: int) -> bytes:
    return struct.pack("<i", value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            frame(
                0x01,
                (1, struct.pack("<H", 18)),
                (2, struct.pack("<H", 1)),
                (3, b"KB-0000-0000-00031337".ljust(30, b"\x00")),
                (4, struct.pack("<I", 123456)),
                (5, struct.pack("<I", 2)),
            ),
            Hello(18, 1, "KB-0000-0000-00031337", 123456, 2),
        ),
        (
            frame(0x11, (1, b"thermo-28aabbccddeeff00"), (2, micro(21_500_000))),
            TemperatureReading("thermo-28aabbccddeeff00", 21.5),
        ),
        (
            frame(0x11, (1, b"thermo-x"), (2, micro(-3_250_000))),
            TemperatureReading("thermo-x", -3.25),
        ),
        (frame(0x11, (1, b"thermo-x"), (2, micro(-1))), TemperatureReading("thermo-x", -1e-6)),
        (frame(0x12, (1, b"relay0"), (2, b"\x01")), OutputStatus("relay0", True)),
        (frame(0x12, (1, b"relay1"), (2, b"\x00\x00")), OutputStatus("relay1", False)),
        (frame(0x12, (1, b"relay1"), (2, b"\x01\x00")), OutputStatus("relay1", True)),
        (
            frame(0x13, (1, bytes.fromhex("0102030405060708"))),
            OnewirePresence(0x0807060504030201, True),
        ),
        (frame(0x13, (1, bytes(8)), (2, b"\x01")), OnewirePresence(0, True)),
        (frame(0x13, (1, b"\x01" + bytes(7)), (2, b"\x00")), OnewirePresence(1, False)),
        (
            frame(0x14, (1, b"onewire\x00"), (2, bytes.fromhex("7856341200000000")), (3, b"\x01")),
            AuthToken("core.onewire", "0000000012345678", True),
        ),
        (
            frame(0x14, (1, b"onewire"), (2, bytes.fromhex("7856341200000000")), (3, b"\x00")),
            AuthToken("core.onewire", "0000000012345678", False),
        ),
        (
            frame(0x14, (1, b"core.rfid"), (2, bytes.fromhex("00ABCDEF12")), (3, b"\x01")),
            AuthToken("core.rfid", "12efcdab00", True),
        ),
        (frame(0x14, (1, b"core.rfid"), (2, b"\x01\x02")), AuthToken("core.rfid", "0201", True)),
    ],
)
def test_messages_decode(data: bytes, message: KbspMessage) -> None:
    assert decode(data)[0] == [message]


def test_unknown_tags_are_skipped_and_a_truncated_last_tag_ignored() -> None:
    payload = b"\x09\x03abc" + b"\x01\x05flow2" + b"\x02\x04\x07\x00\x00\x00" + b"\x03\x09xy"
    assert parse_tags(payload) == {9: b"abc", 1: b"flow2", 2: b"\x07\x00\x00\x00"}
    data = PREFIX + struct.pack("<HH", 0x10, len(payload)) + payload
    data += struct.pack("<H", crc16_kermit(data)) + b"\r\n"
    assert decode(data)[0] == [MeterStatus("flow2", 7)]


def test_unknown_message_ids_are_reported_and_counted() -> None:
    messages, decoder = decode(frame(0x42, (1, b"x")) + HELLO_FW3)
    assert messages == [UnknownMessage(0x42, b"\x01\x01x"), Hello(3, None, None, None, None)]
    assert decoder.stats.unknown_messages == 1
    assert decoder.stats.frames_ok == 2


def test_known_message_missing_a_required_tag_is_dropped_and_counted() -> None:
    messages, decoder = decode(frame(0x10, (1, b"flow0")) + frame(0x14, (1, b"onewire")) + GOOD_A)
    assert messages == [MeterStatus("flow0", 10)]
    assert decoder.stats.malformed_messages == 2
    assert decoder.stats.frames_ok == 3


# --- encoders -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "expected_hex"),
    [
        (encode_ping(), "4b4253502076313a81000000d4c70d0a"),
        (encode_set_output(0, True), "4b4253502076313a84000600010100020101481d0d0a"),
        (encode_set_output(1, False), "4b4253502076313a840006000101010201007a100d0a"),
        (
            encode_set_serial_number("KB-1"),
            "4b4253502076313a8500070001054b422d3100d2460d0a",
        ),
        (frame(0x01, (1, b"\x03\x00")), HELLO_FW3.hex()),
        (frame(0x10, (1, b"flow1\x00"), (2, b"\x04\x00\x00\x00")), METER_FLOW1_4.hex()),
    ],
)
def test_encoders_match_hand_computed_bytes(encoded: bytes, expected_hex: str) -> None:
    expected = bytes.fromhex(expected_hex)
    assert encoded == expected
    assert struct.unpack("<H", expected[-4:-2])[0] == reference_crc(expected[:-4])


def test_encoded_commands_round_trip_through_the_decoder() -> None:
    stream = encode_ping() + encode_set_output(3, True) + encode_set_serial_number("KB-0042")
    messages, decoder = decode(stream, 5)
    assert messages == [
        UnknownMessage(0x81, b""),
        UnknownMessage(0x84, b"\x01\x01\x03\x02\x01\x01"),
        UnknownMessage(0x85, b"\x01\x08KB-0042\x00"),
    ]
    assert decoder.stats.crc_errors == 0


def test_encode_frame_limits() -> None:
    assert len(frame(0x42, (1, bytes(MAX_PAYLOAD_TX - 2)))) == 16 + MAX_PAYLOAD_TX
    with pytest.raises(ValueError, match="over 112"):
        frame(0x42, (1, bytes(MAX_PAYLOAD_TX - 1)))
    with pytest.raises(ValueError):
        frame(0x42, (1, bytes(256)))
    with pytest.raises(ValueError):
        frame(0x42, (256, b""))
    with pytest.raises(ValueError):
        encode_frame(0x10000, [])
    with pytest.raises(ValueError):
        encode_set_output(256, True)
    for serial in ("", "x" * 30, "caf\u00e9", "a\nb"):
        with pytest.raises(ValueError):
            encode_set_serial_number(serial)


# --- properties -----------------------------------------------------------------------------


@given(st.binary(max_size=2048), st.lists(st.integers(0, 2048), max_size=12))
def test_never_raises_and_any_split_gives_the_same_messages(data: bytes, cuts: list[int]) -> None:
    whole, _ = decode(data)
    decoder = KbspDecoder()
    split: list[KbspMessage] = []
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for start, end in itertools.pairwise(bounds):
        split += decoder.feed(data[start:end])
        assert decoder.buffered < MAX_FRAME_LEN
    assert split == whole


@given(st.binary(max_size=300), st.integers(0, 2**32 - 1), st.binary(max_size=300))
def test_a_good_frame_inside_garbage_comes_out(before: bytes, ticks: int, after: bytes) -> None:
    messages, _ = decode(before + meter("flow3", ticks) + after + bytes(MAX_FRAME_LEN))
    assert MeterStatus("flow3", ticks) in messages


@given(st.lists(st.integers(0, 2**32 - 1), max_size=20), st.integers(1, 40))
def test_frame_sequences_survive_any_chunking(readings: list[int], chunk: int) -> None:
    stream = b"".join(meter("flow0", ticks) for ticks in readings)
    assert decode(stream, chunk)[0] == [MeterStatus("flow0", t) for t in readings]
