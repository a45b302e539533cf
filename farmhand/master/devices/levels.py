"""A keg's level crossing a line: `keg.low` once it is down to 15 % (Kegbot's keg_volume_low)
and `keg.ended` (reason `empty`) once it is empty; the keg's own end sends `keg.ended` too.

A line is crossed when the keg was above it before a change of its poured volume and is at or
below it after: a pour crosses it once, and a correction that puts beer back (a canceled pour)
lets a later pour cross it again.
"""

from __future__ import annotations

from typing import Any

from models.devicestore import KegRecord

from ..events import EventBus

KEG_LOW_FRACTION = 0.15


def remaining_ml(keg: KegRecord, poured_ml: float | None = None) -> float:
    return keg.volume_ml - (keg.poured_ml if poured_ml is None else poured_ml)


def notify_levels(events: EventBus, keg: KegRecord, poured_before: float, view: Any) -> None:
    """Send keg.low / keg.ended for the lines the keg crossed since it had `poured_before`."""
    before, after = remaining_ml(keg, poured_before), remaining_ml(keg)
    low = keg.volume_ml * KEG_LOW_FRACTION
    if before > low >= after:
        events.notify("keg.low", {"keg": view, "tap": keg.tap, "fraction": KEG_LOW_FRACTION})
    if before > 0 >= after:
        events.notify("keg.ended", {"keg": view, "tap": keg.tap, "reason": "empty"})
