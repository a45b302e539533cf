"""Times on the wire: ISO 8601 UTC strings with a `Z`, from and to epoch seconds."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(epoch_s: float | None) -> str | None:
    """1700000000.5 → "2023-11-14T22:13:20.500Z"; None stays None."""
    if epoch_s is None:
        return None
    stamp = datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def parse_iso_utc(text: str) -> float:
    """The inverse of iso_utc; also accepts offsets and naive times (taken as UTC)."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
