"""Progress parsing for task output: text goes in, the latest percent (0-100) comes out.

Sans-IO: `ProgressParser.feed(text)` looks at complete lines only (ended by `\\n` or `\\r`, so
progress bars that redraw with `\\r` count) and keeps the unfinished tail for the next feed.
Without a custom regex two built-ins are tried: Blender's `Fra:N` (as a share of the task's
frame range) and a plain `NN.N%`. A custom regex names what it reads with a group: `percent`,
`frame` (a frame number, as a share of the task's range) or `count` (frames done so far,
counted from the task's first frame: ffmpeg's `frame=  N`); else its first group (or the
whole match) is a percent.
"""

from __future__ import annotations

import re

MAX_TAIL_CHARS = 4096

BLENDER_FRAME = re.compile(r"Fra:\s*(-?\d+)")
# The look-behind keeps "1234%" from reading as "234%".
PLAIN_PERCENT = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d+)?)\s?%")
LINE_END = re.compile(r"[\r\n]")


def count_percent(count: int, frame_start: int, frame_end: int) -> float:
    """How far into [frame_start, frame_end] a task is once `count` of its frames are done."""
    frames = abs(frame_end - frame_start) + 1
    return min(100.0, max(0.0, count / frames * 100.0))


def frame_percent(frame: int, frame_start: int, frame_end: int) -> float:
    """How far into [frame_start, frame_end] a task is once `frame` is being rendered."""
    low, high = min(frame_start, frame_end), max(frame_start, frame_end)
    percent = (frame - low + 1) / (high - low + 1) * 100.0
    return min(100.0, max(0.0, percent))


class ProgressParser:
    """Finds progress in a task's output; one parser per task attempt.

    `regex_error` is set (and the built-ins are used) when the custom regex does not compile,
    so the caller can log it: a bad job definition must never crash a worker.
    """

    def __init__(
        self,
        regex: str | None = None,
        frame_start: int | None = None,
        frame_end: int | None = None,
    ) -> None:
        self.frame_start = frame_start
        self.frame_end = frame_end
        self.regex_error: str | None = None
        self._custom: re.Pattern[str] | None = None
        if regex:
            try:
                self._custom = re.compile(regex)
            except (re.error, RecursionError, OverflowError) as exc:
                self.regex_error = f"bad progress regex {regex!r}: {exc}"
        self._tail = ""

    @property
    def has_frame_range(self) -> bool:
        return self.frame_start is not None and self.frame_end is not None

    def feed(self, text: str) -> float | None:
        """The latest percent found in the complete lines of `text` (plus earlier tail)."""
        data = self._tail + text
        last_end = -1
        for match in LINE_END.finditer(data):
            last_end = match.end()
        if last_end < 0:
            self._tail = data[-MAX_TAIL_CHARS:]
            return None
        self._tail = data[last_end:][-MAX_TAIL_CHARS:]
        latest: float | None = None
        for line in LINE_END.split(data[:last_end]):
            if line:
                found = self.parse_line(line)
                if found is not None:
                    latest = found
        return latest

    def parse_line(self, line: str) -> float | None:
        """The percent one complete line reports, or None."""
        if self._custom is not None:
            return self._parse_custom(line)
        return self._parse_builtin(line)

    def _parse_builtin(self, line: str) -> float | None:
        if self.has_frame_range:
            frames = BLENDER_FRAME.findall(line)
            if frames:
                return self._of_frame(frames[-1])
        percents = [float(value) for value in PLAIN_PERCENT.findall(line)]
        valid = [value for value in percents if 0.0 <= value <= 100.0]
        return valid[-1] if valid else None

    def _parse_custom(self, line: str) -> float | None:
        assert self._custom is not None
        latest: float | None = None
        for match in self._custom.finditer(line):
            found = self._value_of(match)
            if found is not None:
                latest = found
        return latest

    def _value_of(self, match: re.Match[str]) -> float | None:
        named = match.groupdict()
        if named.get("percent") is not None:
            return _clamped_percent(named["percent"])
        if named.get("frame") is not None:
            return self._of_frame(named["frame"]) if self.has_frame_range else None
        if named.get("count") is not None:
            return self._of_count(named["count"]) if self.has_frame_range else None
        if "percent" in named or "frame" in named or "count" in named:
            return None  # the named group did not take part in this match
        text = match.group(1) if match.re.groups else match.group(0)
        return _clamped_percent(text) if text is not None else None

    def _of_frame(self, text: str) -> float | None:
        assert self.frame_start is not None and self.frame_end is not None
        try:
            frame = int(text)
        except ValueError:
            return None
        return frame_percent(frame, self.frame_start, self.frame_end)

    def _of_count(self, text: str) -> float | None:
        assert self.frame_start is not None and self.frame_end is not None
        try:
            count = int(text)
        except ValueError:
            return None
        return count_percent(count, self.frame_start, self.frame_end)


def _clamped_percent(text: str) -> float | None:
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        return None
    if value != value:  # NaN
        return None
    return min(100.0, max(0.0, value))
