"""Times on the wire: ISO 8601 UTC strings with a `Z`, from and to epoch seconds."""

from __future__ import annotations

import math
from datetime import UTC, datetime

# Whole seconds already formatted → their text. Views of many clients or tasks stamped within a
# few seconds of each other (clients.list over 10,000 agents heartbeating every 5 s) format each
# second's date and time once. Bounded: cleared when full (a dict's get and set are atomic, so a
# thread reading it never sees a second with another's text).
_SECONDS_KEPT = 4096
_second_texts: dict[int, str] = {}
_MILLIS = tuple(f".{millis:03d}Z" for millis in range(1000))


def iso_utc(epoch_s: float | None) -> str | None:
    """1700000000.5 → "2023-11-14T22:13:20.500Z"; None stays None. Rounds as datetime does
    (to the microsecond, then cut to the millisecond), at a fraction of its cost."""
    if epoch_s is None:
        return None
    whole = math.floor(epoch_s)
    millis = round((epoch_s - whole) * 1_000_000) // 1000
    if millis >= 1000:
        whole, millis = whole + 1, millis - 1000
    text = _second_texts.get(whole) or _format_second(whole)
    return text + _MILLIS[millis]


def _format_second(whole: int) -> str:
    at = datetime.fromtimestamp(whole, UTC)
    day = f"{at.year:04d}-{at.month:02d}-{at.day:02d}"
    text = f"{day}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}"
    if len(_second_texts) >= _SECONDS_KEPT:
        _second_texts.clear()
    _second_texts[whole] = text
    return text


def parse_iso_utc(text: str) -> float:
    """The inverse of iso_utc; also accepts offsets and naive times (taken as UTC)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
