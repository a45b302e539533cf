"""Sleep schedules: weekly windows in which a worker takes no new work (Flamenco's sleep
schedules, OpenCue's NIMBY). Sans-IO: text in, a `Schedule` out; the caller passes the time.

Grammar (case-insensitive, windows separated by commas):
    schedule := window ("," window)*
    window   := [days] [HH:MM "-" HH:MM]        at least one of the two
    days     := day | day "-" day               mon tue wed thu fri sat sun; a range may wrap
A window without days is every day; without times, the whole day. A window whose end is not
after its start runs overnight into the next day: `fri 22:00-06:00` is Friday 22:00 to Saturday
06:00. `24:00` is the end of a day. Times are the local time of whoever asks (the master).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
MAX_SCHEDULE_LENGTH = 1000

_WINDOW = re.compile(
    r"(?:(?P<first>[a-z]+)(?:-(?P<last>[a-z]+))?)?\s*"
    r"(?:(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2}))?"
)


class ScheduleError(ValueError):
    """The text is not a schedule; the message says which window and why."""


@dataclass(frozen=True, slots=True)
class Window:
    days: tuple[int, ...]  # 0 = Monday
    start: int  # minutes after midnight
    end: int  # minutes after midnight, 1-1440; not after `start`: overnight

    @property
    def overnight(self) -> bool:
        return self.end <= self.start

    def spans(self) -> list[tuple[int, int]]:
        """Half-open [start, end) minute ranges within the week (wrapping past Sunday)."""
        spans = []
        for day in self.days:
            begin = day * MINUTES_PER_DAY + self.start
            length = self.end - self.start + (MINUTES_PER_DAY if self.overnight else 0)
            finish = begin + length
            if finish <= MINUTES_PER_WEEK:
                spans.append((begin, finish))
            else:
                spans.append((begin, MINUTES_PER_WEEK))
                spans.append((0, finish - MINUTES_PER_WEEK))
        return spans


@dataclass(frozen=True, slots=True)
class Schedule:
    windows: tuple[Window, ...]
    text: str  # the canonical form: what is stored and shown
    # [begin, end) minutes of the week, computed once: the dispatcher asks on every pass.
    spans: tuple[tuple[int, int], ...] = ()

    @classmethod
    def of(cls, windows: tuple[Window, ...]) -> Schedule:
        text = ", ".join(_format(window) for window in windows)
        return cls(windows, text, tuple(span for w in windows for span in w.spans()))

    def asleep(self, weekday: int, minute: int) -> bool:
        """True if minute `minute` (0-1439) of `weekday` (0 = Monday) is in a window."""
        at = weekday * MINUTES_PER_DAY + minute
        return any(begin <= at < end for begin, end in self.spans)


def parse_schedule(text: str) -> Schedule:
    """`mon-fri 09:00-19:00, sat-sun, 22:00-06:00` → a Schedule; ScheduleError if it is not."""
    if len(text) > MAX_SCHEDULE_LENGTH:
        raise ScheduleError(f"a schedule is at most {MAX_SCHEDULE_LENGTH} characters")
    parts = [part.strip() for part in text.lower().split(",")]
    if not any(parts):
        raise ScheduleError("empty schedule: give windows like 'mon-fri 09:00-19:00'")
    return Schedule.of(tuple(_window(part) for part in parts))


def _window(part: str) -> Window:
    if not part:
        raise ScheduleError("empty window between commas")
    match = _WINDOW.fullmatch(part)
    if match is None or not (match["first"] or match["start"]):
        raise ScheduleError(
            f"bad window {part!r}: expected DAYS, HH:MM-HH:MM or both, e.g. 'mon-fri 09:00-19:00'"
        )
    days = tuple(range(7))
    if match["first"]:
        first = _day(match["first"], part)
        last = _day(match["last"], part) if match["last"] else first
        days = tuple((first + offset) % 7 for offset in range((last - first) % 7 + 1))
    start, end = 0, MINUTES_PER_DAY
    if match["start"]:
        start, end = _minute(match["start"], part), _minute(match["end"], part)
        if start == MINUTES_PER_DAY:
            raise ScheduleError(f"bad window {part!r}: a window cannot start at 24:00")
        if start == end:
            raise ScheduleError(f"bad window {part!r}: it starts and ends at the same time")
    return Window(days, start, end)


def _day(name: str, part: str) -> int:
    for index, day in enumerate(DAYS):
        if name == day or (len(name) > 3 and day == name[:3] and _full_day(name)):
            return index
    raise ScheduleError(f"bad window {part!r}: unknown day {name!r} (use {', '.join(DAYS)})")


def _full_day(name: str) -> bool:
    full = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    return name in full


def _minute(text: str, part: str) -> int:
    hours, minutes = (int(piece) for piece in text.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ScheduleError(f"bad window {part!r}: {text} is not a time (00:00-24:00)")
    return hours * 60 + minutes


def _format(window: Window) -> str:
    pieces = []
    if len(window.days) < 7:
        first, last = DAYS[window.days[0]], DAYS[window.days[-1]]
        pieces.append(first if first == last else f"{first}-{last}")
    if (window.start, window.end) != (0, MINUTES_PER_DAY):
        pieces.append(f"{_hhmm(window.start)}-{_hhmm(window.end)}")
    return " ".join(pieces) or "mon-sun"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
