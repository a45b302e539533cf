"""ProgressParser: built-in patterns, custom regexes, frame ranges, split lines, bad input."""

from __future__ import annotations

import pytest

from protocol.progress import MAX_TAIL_CHARS, ProgressParser, frame_percent


def test_plain_percentage() -> None:
    parser = ProgressParser()
    assert parser.feed("working 12%\n") == 12.0
    assert parser.feed("now 33.5 %\n") == 33.5


def test_latest_percent_in_a_feed_wins() -> None:
    parser = ProgressParser()
    assert parser.feed("10%\n20%\nnothing\n30% then 40%\n") == 40.0


def test_no_percent_gives_none() -> None:
    parser = ProgressParser()
    assert parser.feed("hello world\n") is None
    assert parser.feed("") is None


def test_out_of_range_percentages_are_ignored() -> None:
    parser = ProgressParser()
    assert parser.feed("disk 150%\n") is None
    assert parser.feed("1234%\n") is None  # not read as 234%
    assert parser.feed("100%\n") == 100.0


def test_unfinished_line_waits_for_its_end() -> None:
    parser = ProgressParser()
    assert parser.feed("progress: 4") is None
    assert parser.feed("2% done") is None
    assert parser.feed("\n") == 42.0


def test_carriage_return_ends_a_line() -> None:
    parser = ProgressParser()
    assert parser.feed("[###   ] 50%\r[#### ] 66%\r") == 66.0


def test_tail_is_bounded() -> None:
    parser = ProgressParser()
    assert parser.feed("x" * (MAX_TAIL_CHARS * 10)) is None
    assert len(parser._tail) <= MAX_TAIL_CHARS
    assert parser.feed(" 7%\n") == 7.0


def test_blender_frames_use_the_task_range() -> None:
    parser = ProgressParser(None, 11, 20)
    assert parser.feed("Fra:11 Mem:12.00M (Peak 13.00M) | Time:00:00.10 | Syncing\n") == 10.0
    assert parser.feed("Fra:15 Mem:12.00M | Rendering 5/16 samples\n") == 50.0
    assert parser.feed("Fra:20 Mem:1M\n") == 100.0


def test_blender_frame_is_clamped() -> None:
    parser = ProgressParser(None, 1, 4)
    assert parser.feed("Fra:99\n") == 100.0
    assert parser.feed("Fra:-5\n") == 0.0


def test_blender_frame_without_range_is_ignored() -> None:
    parser = ProgressParser()
    assert parser.feed("Fra:5 Mem:12M\n") is None
    assert parser.feed("Fra:5 Mem:12M 25%\n") == 25.0


def test_single_frame_task() -> None:
    assert frame_percent(7, 7, 7) == 100.0
    assert ProgressParser(None, 7, 7).feed("Fra:7\n") == 100.0


def test_custom_regex_first_group() -> None:
    parser = ProgressParser(r"step \d+ of \d+ \((\d+)\)")
    assert parser.feed("step 3 of 10 (30)\n") == 30.0
    assert parser.feed("50%\n") is None  # a custom regex replaces the built-ins


def test_custom_regex_named_percent_group() -> None:
    parser = ProgressParser(r"(?P<label>\w+)=(?P<percent>[\d.]+)")
    assert parser.feed("done=12.5\n") == 12.5


def test_custom_regex_value_is_clamped() -> None:
    parser = ProgressParser(r"p=(\d+)")
    assert parser.feed("p=250\n") == 100.0


def test_custom_regex_named_frame_group() -> None:
    parser = ProgressParser(r"rendering frame (?P<frame>\d+)", 1, 10)
    assert parser.feed("rendering frame 3\n") == 30.0


def test_custom_regex_without_groups_uses_whole_match() -> None:
    parser = ProgressParser(r"\d+(?=/100)")
    assert parser.feed("at 64/100\n") == 64.0


def test_custom_regex_non_numeric_group_is_ignored() -> None:
    parser = ProgressParser(r"state=(\w+)")
    assert parser.feed("state=busy\n") is None


@pytest.mark.parametrize("regex", ["(unclosed", "*bad", "(?P<percent>"])
def test_bad_regex_falls_back_to_builtins(regex: str) -> None:
    parser = ProgressParser(regex)
    assert parser.regex_error is not None
    assert regex in parser.regex_error
    assert parser.feed("12%\n") == 12.0


def test_empty_regex_means_builtins() -> None:
    parser = ProgressParser("")
    assert parser.regex_error is None
    assert parser.feed("5%\n") == 5.0
