"""NDJSON line framing: lines out of a byte stream, the line limit, and the encoder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ErrorCode, ProtocolError
from protocol.framing import DEFAULT_MAX_LINE_BYTES, LineDecoder, LineTooLong, encode_line


def drain(decoder: LineDecoder, lines: list[bytes] | None = None) -> list[bytes]:
    """Take every complete line, appending to `lines` so they survive a LineTooLong."""
    lines = [] if lines is None else lines
    while (line := decoder.next_line()) is not None:
        lines.append(line)
    return lines


def decode_all(chunks: list[bytes], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[bytes]:
    decoder = LineDecoder(max_line_bytes)
    lines = []
    for chunk in chunks:
        decoder.feed(chunk)
        lines += drain(decoder)
    return lines


@pytest.mark.parametrize(
    ("stream", "lines"),
    [
        (b"", []),
        (b"partial", []),
        (b"\n", [b""]),
        (b"one\n", [b"one"]),
        (b"one\ntwo\n", [b"one", b"two"]),
        (b"one\ntwo", [b"one"]),
        (b"crlf\r\n", [b"crlf"]),
        (b"\r\n", [b""]),
        (b"cr only\r", []),
        (b"inner\rcr\n", [b"inner\rcr"]),
        (b"two crs\r\r\n", [b"two crs\r"]),
        (b'{"a":1}\n{"b":2}\n', [b'{"a":1}', b'{"b":2}']),
        (b"\xff\x00bytes\n", [b"\xff\x00bytes"]),
    ],
)
def test_lines_are_split_on_newline_and_lose_their_line_ending(
    stream: bytes, lines: list[bytes]
) -> None:
    assert decode_all([stream]) == lines


@pytest.mark.parametrize("stream", [b"one\ntwo\r\nthree\n", b"a\r\n\r\nb\rc\nlast"])
def test_splitting_the_stream_anywhere_gives_the_same_lines(stream: bytes) -> None:
    expected = decode_all([stream])
    for cut in range(len(stream) + 1):
        assert decode_all([stream[:cut], stream[cut:]]) == expected
    assert decode_all([bytes([b]) for b in stream]) == expected


def test_feeding_without_draining_keeps_every_line() -> None:
    decoder = LineDecoder()
    for chunk in (b"a\nb", b"\nc\n", b"d"):
        decoder.feed(chunk)
    assert drain(decoder) == [b"a", b"b", b"c"]
    assert decoder.buffered == 1


def test_buffered_counts_bytes_not_yet_taken() -> None:
    decoder = LineDecoder()
    decoder.feed(b"abc\nde")
    assert decoder.buffered == 6
    assert decoder.next_line() == b"abc"
    assert decoder.buffered == 2


@pytest.mark.parametrize(
    ("stream", "lines_before_error"),
    [
        (b"12345678\n", None),  # exactly the limit: fine
        (b"123456789\n", []),  # one byte over, complete
        (b"123456789", []),  # one byte over, still partial
        (b"ok\n123456789\n", [b"ok"]),
        (b"ok\n123456789", [b"ok"]),
        (b"1234567\r\n", None),  # the \r counts, \n does not
        (b"12345678\r\n", []),
    ],
)
def test_a_line_longer_than_the_limit_raises_line_too_long(
    stream: bytes, lines_before_error: list[bytes] | None
) -> None:
    decoder = LineDecoder(max_line_bytes=8)
    decoder.feed(stream)
    if lines_before_error is None:
        assert len(drain(decoder)) == 1
        return
    lines = []
    with pytest.raises(LineTooLong) as info:
        while (line := decoder.next_line()) is not None:
            lines.append(line)
    assert lines == lines_before_error
    assert info.value.limit == 8


def test_line_too_long_is_a_too_large_protocol_error() -> None:
    error = LineTooLong(8)
    assert isinstance(error, ProtocolError)
    assert error.code is ErrorCode.TOO_LARGE
    assert error.reason == "line_too_long"
    assert error.to_dict()["data"] == {"reason": "line_too_long"}


def test_the_decoder_stays_failed_and_keeps_nothing_after_a_long_line() -> None:
    decoder = LineDecoder(max_line_bytes=8)
    decoder.feed(b"123456789")
    with pytest.raises(LineTooLong):
        decoder.next_line()
    decoder.feed(b"\nfine\n")
    assert decoder.buffered == 0
    for _ in range(2):
        with pytest.raises(LineTooLong):
            decoder.next_line()


@pytest.mark.parametrize("drain_each_chunk", [True, False])
def test_a_2_mib_line_raises_and_the_buffer_stays_bounded(drain_each_chunk: bool) -> None:
    chunk = b"x" * 65536
    decoder = LineDecoder()
    with pytest.raises(LineTooLong):
        for _ in range((2 << 20) // len(chunk)):
            decoder.feed(chunk)
            assert decoder.buffered <= DEFAULT_MAX_LINE_BYTES + len(chunk)
            if drain_each_chunk:
                decoder.next_line()
        decoder.next_line()
    assert decoder.buffered == 0


def test_a_2_mib_line_in_one_chunk_raises() -> None:
    decoder = LineDecoder()
    decoder.feed(b"x" * (2 << 20) + b"\n")
    with pytest.raises(LineTooLong):
        decoder.next_line()


def test_many_small_lines_are_all_returned() -> None:
    stream = b"".join(b'{"n":%d}\n' % n for n in range(20000))
    chunks = [stream[i : i + 4096] for i in range(0, len(stream), 4096)]
    lines = decode_all(chunks)
    assert len(lines) == 20000
    assert lines[-1] == b'{"n":19999}'


@pytest.mark.parametrize("payload", [b"", b"{}", b'{"a":"b"}', b"\r"])
def test_encode_line_appends_one_newline(payload: bytes) -> None:
    assert encode_line(payload) == payload + b"\n"
    decoder = LineDecoder()
    decoder.feed(encode_line(payload))
    assert decoder.next_line() == payload.removesuffix(b"\r")


def test_encode_line_refuses_a_payload_with_a_newline() -> None:
    with pytest.raises(ValueError):
        encode_line(b"a\nb")


def reference_lines(stream: bytes, limit: int) -> tuple[list[bytes], bool]:
    """What the decoder must return: the lines up to the first too-long one, and whether one was."""
    *complete, partial = stream.split(b"\n")
    lines = []
    for line in complete:
        if len(line) > limit:
            return lines, True
        lines.append(line.removesuffix(b"\r"))
    return lines, len(partial) > limit


@given(
    chunks=st.lists(st.binary(max_size=40), max_size=20),
    limit=st.integers(min_value=1, max_value=16),
    drain_each_chunk=st.booleans(),
)
def test_any_bytes_give_the_reference_lines_or_line_too_long(
    chunks: list[bytes], limit: int, drain_each_chunk: bool
) -> None:
    decoder = LineDecoder(limit)
    lines: list[bytes] = []
    failed = False
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            if drain_each_chunk:
                assert decoder.buffered <= limit + len(chunk)
                drain(decoder, lines)
        drain(decoder, lines)
    except LineTooLong:
        failed = True
    assert (lines, failed) == reference_lines(b"".join(chunks), limit)


@given(st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=10))
def test_encoded_lines_decode_to_the_payloads(payloads: list[bytes]) -> None:
    stream = b"".join(encode_line(p) for p in payloads)
    assert decode_all([stream]) == [p.removesuffix(b"\r") for p in payloads]
