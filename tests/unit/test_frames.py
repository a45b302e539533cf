"""Frame specs: ranges, steps (`1-100x5`) and negative frames, as Blender allows them."""

from __future__ import annotations

import pytest

from protocol.errors import RpcError
from protocol.frames import (
    MAX_STEPPED_FRAMES,
    expand_argv_longest,
    parse_frames,
    split_chunks,
)

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    ("spec", "runs"),
    [
        ("1-10,20,30-40", [(1, 10), (20, 20), (30, 40)]),
        ("1-9x4", [(1, 1), (5, 5), (9, 9)]),
        ("1-10x4", [(1, 1), (5, 5), (9, 9)]),
        ("1-5x1", [(1, 5)]),
        ("-10--1", [(-10, -1)]),
        ("-3", [(-3, -3)]),
        ("-5-5,7", [(-5, 5), (7, 7)]),
        ("-4-4x4", [(-4, -4), (0, 0), (4, 4)]),
        ("1-9x4,2-4", [(1, 5), (9, 9)]),
    ],
)
def test_frame_specs_take_steps_and_negative_frames(spec: str, runs: list[tuple[int, int]]) -> None:
    assert parse_frames(spec) == runs


def test_a_stepped_range_makes_one_task_per_frame_whatever_the_chunk() -> None:
    chunks = split_chunks(parse_frames("1-100x5"), 10)
    assert chunks == [(frame, frame) for frame in range(1, 101, 5)]
    assert len(chunks) == 20


def test_negative_frames_chunk_like_positive_ones() -> None:
    assert split_chunks(parse_frames("-10--1"), 4) == [(-10, -7), (-6, -3), (-2, -1)]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("1-10x0", "at least 1"),
        ("1-10x", "N-MxSTEP"),
        ("1x5", "N-MxSTEP"),
        ("--5", "N-MxSTEP"),
        ("-1--5", "backwards"),
        ("-20000000000", "N-MxSTEP"),
        ("-1000000001", "frames go from"),
        (f"0-{MAX_STEPPED_FRAMES * 2}x2,1-{MAX_STEPPED_FRAMES * 2}x2", "more than"),
    ],
)
def test_bad_steps_and_negative_frames_are_refused_clearly(spec: str, words: str) -> None:
    with pytest.raises(RpcError) as refused:
        parse_frames(spec)
    assert refused.value.reason == "bad_frames"
    assert words in refused.value.message


def test_the_longest_placeholder_counts_the_minus_sign() -> None:
    assert expand_argv_longest(["{frame}", "{frames}"], parse_frames("-1000-5"), 3) == [
        "-1000",
        "-1000--1000",
    ]
