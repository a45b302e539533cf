"""The one backoff (protocol/backoff.py): exponential growth, a ceiling, jitter, reset."""

from __future__ import annotations

import random

import pytest

from protocol.backoff import Backoff, exponential_delay

pytestmark = pytest.mark.fast


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


def test_the_delay_stays_at_the_maximum_however_long_it_retries() -> None:
    backoff = Backoff(initial_s=0.5, maximum_s=30.0, rng=random.Random(2))
    for _ in range(1100):  # a master away for ~9 hours: past 2.0 ** 1024
        delay = backoff.next_delay()
    assert 15.0 <= delay <= 30.0


@pytest.mark.parametrize(
    ("retries", "delay"),
    [(0, 1.0), (1, 2.0), (2, 4.0), (5, 32.0), (6, 60.0), (7, 60.0), (5000, 60.0), (-1, 1.0)],
)
def test_exponential_delay_doubles_up_to_the_maximum(retries: int, delay: float) -> None:
    assert exponential_delay(retries, 1.0, 60.0) == delay
