"""OutputBuffer: batching, and the drop-the-middle bound while the master is unreachable."""

from __future__ import annotations

from farmhand.worker.reports import OutputBuffer


def drain(buffer: OutputBuffer, batch: int = 1000) -> str:
    parts = []
    while buffer:
        parts.append(buffer.take(batch))
    return "".join(parts)


def test_take_batches_in_order() -> None:
    buffer = OutputBuffer(limit=100)
    for i in range(10):
        buffer.append(f"{i}\n", 0.0, may_drop=False)
    assert buffer.take(6) == "0\n1\n2\n"
    assert buffer.since == 0.0
    assert drain(buffer) == "".join(f"{i}\n" for i in range(3, 10))
    assert buffer.since is None


def test_connected_appends_never_drop() -> None:
    buffer = OutputBuffer(limit=10)
    for _ in range(5):
        assert buffer.append("abcdef", 0.0, may_drop=False) == 0
    assert drain(buffer) == "abcdef" * 5


def test_disconnected_drops_the_middle_with_one_marker_line() -> None:
    buffer = OutputBuffer(limit=100)
    lines = [f"line {i:04d}\n" for i in range(100)]  # 10 bytes each, 1000 in all
    dropped = sum(buffer.append(line, 0.0, may_drop=True) for line in lines)
    assert buffer.pending <= 100
    text = drain(buffer)
    marker = f"[farmhand: {dropped} bytes of output dropped while the master was unreachable]\n"
    head, tail = text.split(marker)
    assert "".join(lines).startswith(head)
    assert "".join(lines).endswith(tail)
    assert len(head) + dropped + len(tail) == 1000
    assert text.endswith("line 0099\n")


def test_marker_gets_a_line_of_its_own() -> None:
    buffer = OutputBuffer(limit=20)
    buffer.append("no newline", 0.0, may_drop=True)
    buffer.append("x" * 30, 0.0, may_drop=True)
    assert drain(buffer).startswith("no newline\n[farmhand: 20 bytes")


def test_marker_after_an_earlier_batch_that_ended_mid_line() -> None:
    buffer = OutputBuffer(limit=20)
    buffer.append("partial", 0.0, may_drop=True)
    assert buffer.take(100) == "partial"
    buffer.append("y" * 50, 0.0, may_drop=True)
    assert drain(buffer).startswith("\n[farmhand: 30 bytes")


def test_trimming_never_splits_a_character() -> None:
    buffer = OutputBuffer(limit=10)
    buffer.append("€" * 20, 0.0, may_drop=True)  # 60 bytes, 3 per character
    text = drain(buffer)
    assert "\ufffd" not in text
    assert text.endswith("€")


def test_put_back_restores_the_front() -> None:
    buffer = OutputBuffer(limit=100)
    buffer.append("first ", 0.0, may_drop=False)
    buffer.append("second", 0.0, may_drop=False)
    taken = buffer.take(6)
    buffer.append(" third", 1.0, may_drop=False)
    buffer.put_back(taken, 2.0)
    assert drain(buffer) == "first second third"
