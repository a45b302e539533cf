"""Fuzzing every decoder in protocol/ that reads what a peer or a device sends (issue 9, the
attack suite): KBSP, ID-12, sensor lines, telnet console input, NDJSON framing, JSON-RPC
messages, selectors and the HTTP sniffer. For each: any input gives results or the decoder's
one documented error, memory stays bounded, any split of the input gives the same results, and
hostile input costs time in proportion to its size (a bound is measured on 256 KiB).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import id12, kbsp
from protocol.errors import ProtocolError, RpcError
from protocol.frames import parse_frames
from protocol.framing import LineDecoder, LineTooLong
from protocol.httpsniff import looks_like_http
from protocol.jsonrpc import parse_message
from protocol.selector import parse_selector
from protocol.sensorlines import parse_sensor_line
from protocol.telnet import ConsoleInput

pytestmark = pytest.mark.timeout(120)

EXAMPLES = int(os.environ.get("FARMHAND_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize="FARMHAND_FUZZ_EXAMPLES" not in os.environ
)
HOSTILE_BYTES = 1 << 18  # 256 KiB of hostile input per measurement
# A decoder may spend this much CPU on it: ~5x what the slowest one needs on this 2-core machine,
# far below what anything quadratic would take.
HOSTILE_BOUND_S = 2.0

GOOD_KBSP = kbsp.encode_frame(kbsp.METER_STATUS, [(1, b"flow0\x00"), (2, b"\x10\x00\x00\x00")])
GOOD_ID12 = id12.encode_id12("0415ab6c2e")
# Byte soup with the decoders' own framing bytes in it, so that the fuzzer meets their states.
PIECES = st.sampled_from(
    [
        GOOD_KBSP,
        GOOD_KBSP[:7],
        GOOD_KBSP[5:],
        kbsp.PREFIX,
        kbsp.PREFIX + b"\x10\x00\xf0\x00",
        GOOD_ID12,
        GOOD_ID12[:9],
        b"\x02",
        b"\x03",
        b"\r\n",
        b"\xff\xfb\x01",
        b"\xff\xfa",
        b"\xff\xf0",
        b"{",
        b"}",
        b'"',
        b"\n",
    ]
)
STREAMS = st.lists(PIECES | st.binary(max_size=40), max_size=30).map(b"".join)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def timed(fn: Callable[[], object]) -> float:
    """CPU seconds `fn` took in this process: the bounds are about the decoders' work, and
    wall time on a shared machine also counts the other processes' turns (3.3 s seen)."""
    began = time.process_time()
    fn()
    return time.process_time() - began


# -- KBSP (hwagent --driver kegboard) ---------------------------------------------------------


@FUZZ
@given(stream=STREAMS, cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_kbsp_any_bytes_any_split(stream: bytes, cuts: list[int]) -> None:
    whole = kbsp.KbspDecoder()
    expected = whole.feed(stream)
    split = kbsp.KbspDecoder()
    got = []
    for chunk in chunked(stream, cuts):
        got += split.feed(chunk)
        assert split.buffered < kbsp.MAX_FRAME_LEN
    assert got == expected


@pytest.mark.parametrize(
    "unit",
    [kbsp.PREFIX, kbsp.PREFIX + b"\x10\x00\xf0\x00", b"KBSP v1", b"K", GOOD_KBSP[:-1] + b"X"],
)
def test_kbsp_hostile_flood_is_linear(unit: bytes) -> None:
    decoder = kbsp.KbspDecoder()
    assert timed(lambda: decoder.feed(unit * (HOSTILE_BYTES // len(unit)))) < HOSTILE_BOUND_S
    assert decoder.buffered < kbsp.MAX_FRAME_LEN


# -- ID-12 (hwagent --driver id12) ------------------------------------------------------------


@FUZZ
@given(stream=STREAMS, cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_id12_any_bytes_any_split(stream: bytes, cuts: list[int]) -> None:
    expected = id12.Id12Decoder().feed(stream)
    split = id12.Id12Decoder()
    got = []
    for chunk in chunked(stream, cuts):
        got += split.feed(chunk)
        assert split.buffered < id12.FRAME_LEN
    assert got == expected


@pytest.mark.parametrize("unit", [b"\x02", b"\x02" + b"0" * 14, GOOD_ID12[:-1] + b"\x02"])
def test_id12_hostile_flood_is_linear(unit: bytes) -> None:
    decoder = id12.Id12Decoder()
    assert timed(lambda: decoder.feed(unit * (HOSTILE_BYTES // len(unit)))) < HOSTILE_BOUND_S


# -- sensor lines (hwagent --driver lines) ----------------------------------------------------

SENSOR_TEXT = st.text(max_size=200) | st.sampled_from(
    ["t=21.5 C", "flow0=12 ticks", '{"sensor":"t","value":1}', '{"meter":"m","ticks":-1}']
)


@FUZZ
@given(line=SENSOR_TEXT | st.text(alphabet='[{"}]:,0e-.', max_size=1100))
def test_sensor_lines_parse_or_raise_protocol_error(line: str) -> None:
    try:
        parse_sensor_line(line)
    except ProtocolError as exc:
        assert exc.reason == "bad_line"


def test_sensor_lines_hostile_inputs_are_cheap() -> None:
    for line in ("[" * 1024, "{" * 1024, "a=" + "1" * 1022, "a" * HOSTILE_BYTES, '{"a":' * 200):
        assert timed(lambda line=line: _quietly(parse_sensor_line, line)) < 0.1


# -- telnet console input and NDJSON framing (the master's port) ------------------------------


@FUZZ
@given(stream=STREAMS, cuts=st.lists(st.integers(0, 2000), max_size=8), limit=st.integers(1, 64))
def test_console_input_any_bytes_any_split(stream: bytes, cuts: list[int], limit: int) -> None:
    def events(chunks: list[bytes]) -> list[object]:
        reader, out = ConsoleInput(limit), []
        try:
            for chunk in chunks:
                out += reader.feed(chunk)
                assert reader.buffered <= limit
        except LineTooLong:
            out.append("too long")
        return out

    split, whole = events(chunked(stream, cuts)), events([stream])
    # A too-long line loses what came earlier in its own chunk (the connection closes anyway),
    # so only the outcome must agree then.
    if "too long" in whole:
        assert split[-1] == "too long"
    else:
        assert split == whole


@FUZZ
@given(stream=STREAMS, cuts=st.lists(st.integers(0, 2000), max_size=8), limit=st.integers(1, 64))
def test_ndjson_framing_any_bytes_any_split(stream: bytes, cuts: list[int], limit: int) -> None:
    def lines(chunks: list[bytes]) -> list[object]:
        decoder, out = LineDecoder(limit), []
        try:
            for chunk in chunks:
                decoder.feed(chunk)
                assert decoder.buffered <= limit + len(chunk) + 1
                while (line := decoder.next_line()) is not None:
                    assert len(line) <= limit
                    out.append(line)
        except LineTooLong:
            out.append("too long")
        return out

    assert lines(chunked(stream, cuts)) == lines([stream])


def test_framing_hostile_floods_are_linear() -> None:
    console = ConsoleInput(4096)
    assert (
        timed(lambda: _quietly(console.feed, b"\xff\xf1" * (HOSTILE_BYTES // 2))) < HOSTILE_BOUND_S
    )
    decoder = LineDecoder(HOSTILE_BYTES)
    # A long partial line fed a byte at a time must not be rescanned on every feed.
    assert (
        timed(lambda: [decoder.feed(b"a" * 64) for _ in range(HOSTILE_BYTES // 64 - 1)])
        < HOSTILE_BOUND_S
    )


# -- JSON-RPC messages, selectors, frame specs, the HTTP sniffer -----------------------------


@FUZZ
@given(line=STREAMS | st.text(max_size=300).map(str.encode))
def test_jsonrpc_parse_gives_a_message_or_a_protocol_error(line: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_message(line)


def test_jsonrpc_deep_nesting_is_a_protocol_error() -> None:
    for depth in (100, 1000, 100_000):
        deep = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":' + b"[" * depth
        deep += b"]" * depth + b"}}"
        with contextlib.suppress(ProtocolError):
            parse_message(deep)


@FUZZ
@given(text=st.text(max_size=200) | st.text(alphabet="*?[]!=-^\\ a", max_size=200))
def test_selectors_parse_or_raise_a_params_error(text: str) -> None:
    class Client:
        name, role, host, enabled, online, status, tags = (
            "render-01",
            "worker",
            "h",
            True,
            1,
            "idle",
            [],
        )

    try:
        parse_selector(text).matches(Client())  # type: ignore[arg-type]
    except ProtocolError as exc:
        assert exc.reason == "bad_selector"


@FUZZ
@given(spec=st.text(alphabet="0123456789-x, ", max_size=60) | st.text(max_size=30))
def test_frame_specs_parse_or_raise_a_params_error(spec: str) -> None:
    try:
        parse_frames(spec)
    except RpcError as exc:
        assert exc.reason == "bad_frames"


@FUZZ
@given(line=st.text(max_size=4096))
def test_the_http_sniffer_answers_any_line_quickly(line: str) -> None:
    assert isinstance(looks_like_http(line), bool)


def test_the_http_sniffer_is_linear_on_its_worst_lines() -> None:
    for line in ("GET " + "/" * 4090, "A " * 2048, "GET /" + " " * 4000 + "HTTP/1.", "!" * 4096):
        assert timed(lambda line=line: looks_like_http(line)) < 0.05


def _quietly(fn: Callable[[object], object], arg: object) -> None:
    with contextlib.suppress(ProtocolError, LineTooLong):
        fn(arg)
