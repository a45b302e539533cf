"""ID-12 / ID-20 RFID reader frames: good reads, bad frames, resync and any split of the input."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.id12 import (
    FRAME_LEN,
    BadFrame,
    Id12Decoder,
    Id12Event,
    TokenRead,
    encode_id12,
)

# The read in the well-known Arduino ID-12 example: data 62 E3 08 6C ED, checksum
# 62^E3^08^6C^ED = 08.
GOOD = b"\x0262E3086CED08\r\n\x03"
GOOD_READ = TokenRead("62e3086ced")
OTHER = encode_id12("1234abcdef")


def decode(data: bytes, chunk: int | None = None) -> list[Id12Event]:
    decoder = Id12Decoder()
    if chunk is None:
        return decoder.feed(data)
    events: list[Id12Event] = []
    for i in range(0, len(data), chunk):
        events += decoder.feed(data[i : i + chunk])
    return events


def test_good_frame() -> None:
    assert len(GOOD) == FRAME_LEN
    assert decode(GOOD) == [GOOD_READ]
    assert encode_id12("62E3086CED") == GOOD
    assert encode_id12("62e3086ced") == GOOD


def test_lower_case_digits_from_a_reader_are_accepted() -> None:
    assert decode(GOOD.lower()) == [GOOD_READ]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\x0262E3086CED09\r\n\x03", "bad_checksum"),
        (b"\x0262E3086CED0\r\n\x03X", "bad_terminator"),
        (b"\x0262E3086CED08\n\r\x03", "bad_terminator"),
        (b"\x0262E3086CED08\r\n\x04", "bad_terminator"),
        (b"\x0262E308ZCED08\r\n\x03", "not_hex"),
        (b"\x02 2E3086CED08\r\n\x03", "not_hex"),
        (b"\x0262E3086CED+8\r\n\x03", "not_hex"),
    ],
)
def test_bad_frames_are_reported_and_the_next_read_still_comes_out(
    frame: bytes, reason: str
) -> None:
    assert decode(frame + GOOD) == [BadFrame(reason, frame), GOOD_READ]


def test_truncated_frame_then_good() -> None:
    cut = GOOD[:7]
    for chunk in (None, 1, 5):
        assert decode(cut + GOOD + OTHER, chunk) == [
            BadFrame("truncated", cut),
            GOOD_READ,
            TokenRead("1234abcdef"),
        ]


def test_garbage_before_stx_is_skipped() -> None:
    assert decode(b"\x00\xffnoise\r\n\x03" + GOOD + b"tail" + OTHER) == [
        GOOD_READ,
        TokenRead("1234abcdef"),
    ]


@pytest.mark.parametrize("cut", range(1, FRAME_LEN))
def test_split_at_every_position(cut: int) -> None:
    decoder = Id12Decoder()
    stream = GOOD + OTHER
    assert decoder.feed(stream[:cut]) == []
    assert decoder.feed(stream[cut:]) == [GOOD_READ, TokenRead("1234abcdef")]
    assert decoder.buffered == 0


def test_buffer_holds_at_most_a_partial_frame() -> None:
    decoder = Id12Decoder()
    decoder.feed(b"noise" * 1000)
    assert decoder.buffered == 0
    decoder.feed(GOOD[:-1])
    assert decoder.buffered == FRAME_LEN - 1


@pytest.mark.parametrize("token", ["", "62E3086CE", "62E3086CED0", "62E3086CEG", "0x E3086CE"])
def test_encode_refuses_bad_tokens(token: str) -> None:
    with pytest.raises(ValueError):
        encode_id12(token)


@given(st.binary(max_size=512), st.lists(st.integers(0, 512), max_size=10))
def test_never_raises_and_any_split_gives_the_same_events(data: bytes, cuts: list[int]) -> None:
    whole = decode(data)
    decoder = Id12Decoder()
    split: list[Id12Event] = []
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for start, end in itertools.pairwise(bounds):
        split += decoder.feed(data[start:end])
        assert decoder.buffered < FRAME_LEN
    assert split == whole
    for event in whole:
        assert isinstance(event, TokenRead | BadFrame)


@given(st.binary(max_size=64), st.binary(min_size=5, max_size=5))
def test_a_read_after_any_noise_comes_out(noise: bytes, data: bytes) -> None:
    # Even noise holding STX cannot swallow the read: a frame window never covers an STX.
    token = data.hex()
    assert decode(noise + encode_id12(token))[-1:] == [TokenRead(token)]
