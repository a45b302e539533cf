"""Times on the wire: ISO 8601 UTC strings with a `Z`, from and to epoch seconds."""

from __future__ import annotations

import math
from datetime import UTC, datetime

# The last whole second formatted and its text: views of many clients or tasks stamped within
# the same second (clients.list over 10,000 agents) format the date and time once.
# One tuple, replaced whole: a thread reading it never sees a second with another's text.
_last_second: tuple[int, str] = (-(2**62), "")


def iso_utc(epoch_s: float | None) -> str | None:
    """1700000000.5 → "2023-11-14T22:13:20.500Z"; None stays None. Rounds as datetime does
    (to the microsecond, then cut to the millisecond), at a fraction of its cost."""
    if epoch_s is None:
        return None
    whole = math.floor(epoch_s)
    micros = round((epoch_s - whole) * 1_000_000)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    global _last_second
    second, text = _last_second
    if second != whole:
        at = datetime.fromtimestamp(whole, UTC)
        day = f"{at.year:04d}-{at.month:02d}-{at.day:02d}"
        text = f"{day}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}"
        _last_second = (whole, text)
    return f"{text}.{micros // 1000:03d}Z"


def parse_iso_utc(text: str) -> float:
    """The inverse of iso_utc; also accepts offsets and naive times (taken as UTC)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
