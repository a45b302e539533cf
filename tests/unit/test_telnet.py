"""Console input: line endings, telnet stripping, Ctrl-C / Ctrl-D, backspace, the line limit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.framing import DEFAULT_MAX_LINE_BYTES, LineTooLong
from protocol.telnet import (
    BRK,
    DO,
    EC,
    EL,
    EOF,
    IAC,
    IP,
    NOP,
    SB,
    SE,
    WILL,
    ConsoleEvent,
    ConsoleInput,
    EndOfInput,
    Interrupt,
    Line,
    encode_output,
)

INTR = Interrupt()
END = EndOfInput()


def iac(*codes: int) -> bytes:
    return bytes((IAC, *codes))


def events_of(*chunks: bytes, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[ConsoleEvent]:
    console = ConsoleInput(max_line_bytes)
    events: list[ConsoleEvent] = []
    for chunk in chunks:
        events += console.feed(chunk)
    return events


CASES: list[tuple[str, bytes, list[ConsoleEvent]]] = [
    # Line endings: CR LF, CR NUL, LF; a lone CR ends the line once the next byte shows it.
    ("lf", b"status\n", [Line("status")]),
    ("crlf", b"status\r\n", [Line("status")]),
    ("crnul", b"status\r\x00", [Line("status")]),
    ("lone cr", b"a\rb\n", [Line("a"), Line("b")]),
    ("cr waits", b"a\r", []),
    ("cr cr lf", b"a\r\r\n", [Line("a"), Line("")]),
    ("empty lines", b"\n\r\n\r\x00", [Line(""), Line(""), Line("")]),
    ("lf cr", b"a\n\rb\n", [Line("a"), Line(""), Line("b")]),
    ("no ending yet", b"clients all", []),
    ("tab kept", b"a\tb\n", [Line("a\tb")]),
    ("spaces kept", b"  jobs  \n", [Line("  jobs  ")]),
    ("utf8", "jöb ✓\n".encode(), [Line("jöb ✓")]),
    # Telnet commands are stripped.
    ("will/do", iac(WILL, 1) + b"ls" + iac(DO, 3) + b"\n", [Line("ls")]),
    ("nop", b"l" + iac(NOP) + b"s\n", [Line("ls")]),
    ("unknown cmd", b"l" + iac(1) + b"s\n", [Line("ls")]),
    ("iac iac", b"a" + iac(IAC) + b"b\n", [Line("a\ufffdb")]),
    ("subneg", b"x" + iac(SB, 24, 0) + b"xterm" + iac(SE) + b"y\n", [Line("xy")]),
    ("subneg iac", b"x" + iac(SB, 31) + iac(IAC) + b"\n" + iac(SE) + b"y\n", [Line("xy")]),
    ("subneg other iac", iac(SB, 1) + iac(NOP) + b"q" + iac(SE) + b"z\n", [Line("z")]),
    ("iac between cr lf", b"a\r" + iac(NOP) + b"\n", [Line("a")]),
    ("neg between cr lf", b"a\r" + iac(DO, 1) + b"\x00b\n", [Line("a"), Line("b")]),
    # Ctrl-C and Ctrl-D, raw and as telnet commands; they drop the unfinished line.
    ("raw ctrl-c", b"abc\x03", [INTR]),
    ("iac ip", b"abc" + iac(IP) + b"d\n", [INTR, Line("d")]),
    ("iac brk", iac(BRK), [INTR]),
    ("raw ctrl-d", b"\x04", [END]),
    ("iac eof", b"quit\n" + iac(EOF), [Line("quit"), END]),
    ("cr then ctrl-c", b"a\r\x03", [Line("a"), INTR]),
    ("cr then iac ip", b"a\r" + iac(IP), [Line("a"), INTR]),
    ("order", b"a\n\x03b\n\x04", [Line("a"), INTR, Line("b"), END]),
    # Editing.
    ("backspace", b"lx\x08s\n", [Line("ls")]),
    ("delete", b"lx\x7fs\n", [Line("ls")]),
    ("backspace at start", b"\x08\x7fls\n", [Line("ls")]),
    ("backspace utf8", "aé\x7f✓\x08€𝄞\x7fb\n".encode(), [Line("a€b")]),
    ("backspace all", "é✓\x7f\x7f\x7f".encode() + b"\n", [Line("")]),
    ("iac ec", b"lx" + iac(EC) + b"s\n", [Line("ls")]),
    ("iac el", b"junk" + iac(EL) + b"ls\n", [Line("ls")]),
    ("cr then ec", b"a\r" + iac(EC) + b"b\n", [Line("a"), Line("b")]),
    ("other controls", b"l\x1b\x07\x00s\x01\n", [Line("ls")]),
    # Invalid UTF-8 becomes replacement characters.
    ("bad utf8", b"a\xc3(\x80\n", [Line("a\ufffd(\ufffd")]),
    ("truncated utf8", b"\xe2\x9c\n", [Line("\ufffd")]),
    ("bad utf8 backspace", b"a\x80\x80\x80\x80\x7f\n", [Line("a\ufffd\ufffd\ufffd")]),
]


@pytest.mark.parametrize(("stream", "events"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_console_bytes_become_these_events(stream: bytes, events: list[ConsoleEvent]) -> None:
    assert events_of(stream) == events


@pytest.mark.parametrize("stream", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_any_split_of_the_input_gives_the_same_events(stream: bytes) -> None:
    expected = events_of(stream)
    for cut in range(len(stream) + 1):
        assert events_of(stream[:cut], stream[cut:]) == expected
    assert events_of(*(bytes([b]) for b in stream)) == expected


def test_a_line_at_the_limit_is_accepted_and_one_byte_more_is_not() -> None:
    assert events_of(b"x" * 8 + b"\r\n", max_line_bytes=8) == [Line("x" * 8)]
    with pytest.raises(LineTooLong):
        events_of(b"x" * 9, max_line_bytes=8)
    with pytest.raises(LineTooLong):
        events_of(*(b"x" for _ in range(9)), max_line_bytes=8)


def test_telnet_bytes_do_not_count_towards_the_limit() -> None:
    stream = b"x" * 4 + iac(SB, 24) + b"y" * 100 + iac(SE) + iac(NOP) * 50 + b"x" * 4 + b"\n"
    assert events_of(stream, max_line_bytes=8) == [Line("x" * 8)]


@pytest.mark.parametrize("chunk_size", [65536, 1 << 21])
def test_a_2_mib_line_raises_and_nothing_beyond_the_limit_is_kept(chunk_size: int) -> None:
    console = ConsoleInput()
    line = b"x" * (2 << 20)
    with pytest.raises(LineTooLong) as info:
        for start in range(0, len(line), chunk_size):
            console.feed(line[start : start + chunk_size])
            assert console.buffered <= DEFAULT_MAX_LINE_BYTES
    assert info.value.limit == DEFAULT_MAX_LINE_BYTES
    assert console.buffered == 0
    with pytest.raises(LineTooLong):
        console.feed(b"\n")


@given(st.lists(st.binary(max_size=30), max_size=10), st.integers(min_value=1, max_value=16))
def test_any_bytes_give_events_or_line_too_long(chunks: list[bytes], limit: int) -> None:
    console = ConsoleInput(limit)
    try:
        for chunk in chunks:
            for event in console.feed(chunk):
                assert isinstance(event, Line | Interrupt | EndOfInput)
                if isinstance(event, Line):
                    assert not any(ch in event.text for ch in "\r\n\x00\x03\x04\x08\x7f")
            assert console.buffered <= limit
    except LineTooLong:
        pass


telnetish = st.lists(
    st.sampled_from(
        [
            b"a",
            b"\xc3\xa9",
            b"\r",
            b"\n",
            b"\x00",
            b"\x03",
            b"\x04",
            b"\x7f",
            b"\xff",
            iac(IAC),
            iac(SB),
            iac(SE),
            iac(DO),
            iac(IP),
            iac(EC),
        ]
    )
    | st.binary(max_size=4),
    max_size=30,
).map(b"".join)


@given(telnetish, st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_chunking_never_changes_the_events(stream: bytes, cuts: list[int]) -> None:
    points = sorted({min(cut, len(stream)) for cut in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    assert events_of(*chunks) == events_of(stream)


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("", b""),
        ("farmhand> ", b"farmhand> "),
        ("a\nb\n", b"a\r\nb\r\n"),
        ("already\r\n", b"already\r\n"),
        ("jöb ✓\n", "jöb ✓\r\n".encode()),
    ],
)
def test_output_uses_crlf_line_endings(text: str, wire: bytes) -> None:
    assert encode_output(text) == wire


@given(st.text(max_size=50))
def test_output_never_contains_a_bare_iac_or_lf(text: str) -> None:
    wire = encode_output(text)
    assert wire.replace(b"\r\n", b"").count(b"\n") == 0
    assert wire.replace(b"\xff\xff", b"").count(b"\xff") == 0
