"""The one backoff (protocol/backoff.py): exponential growth, a ceiling, jitter, reset."""

from __future__ import annotations

import random

from protocol.backoff import Backoff


def test_delays_double_up_to_the_maximum_each_scaled_into_half_to_full() -> None:
    backoff = Backoff(initial_s=0.5, maximum_s=4.0, rng=random.Random(7))
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    for ceiling in ceilings:
        delay = backoff.next_delay()
        assert ceiling * 0.5 <= delay <= ceiling


def test_reset_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(initial_s=1.0, maximum_s=60.0, rng=random.Random(1))
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0
