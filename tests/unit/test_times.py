"""Times on the wire: iso_utc formats exactly as datetime's isoformat does, faster."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from protocol.times import iso_utc, parse_iso_utc

pytestmark = pytest.mark.timeout(10)


def _by_datetime(epoch_s: float) -> str:
    return (
        datetime.fromtimestamp(epoch_s, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def test_iso_utc_formats_as_datetime_does_including_rounding_edges() -> None:
    rng = random.Random(12)
    stamps = [rng.uniform(-6.2e10, 2.5e11) for _ in range(20_000)]
    stamps += [1700000000 + rng.randrange(1000) / 1000 for _ in range(2_000)]  # one second
    stamps += [0.0, -0.5, 1700000000.5, 1700000000.9999995, 1700000000.0004995, 1e9 + 0.9999996]
    assert [iso_utc(s) for s in stamps] == [_by_datetime(s) for s in stamps]
    assert iso_utc(1700000000.5) == "2023-11-14T22:13:20.500Z"
    assert iso_utc(None) is None


def test_iso_utc_round_trips() -> None:
    assert parse_iso_utc(iso_utc(1700000000.25) or "") == 1700000000.25
