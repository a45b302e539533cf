"""How long a failed task waits before its next attempt.

A job's `retry_delay_s` is the wait before the first retry; each later retry waits twice as long
as the one before, up to RETRY_DELAY_CAP_S (or `retry_delay_s` itself, if that is longer). A job
without one gets DEFAULT_RETRY_DELAY_S: 10 s, 20 s, 40 s … 10 min. `retry_delay_s: 0` retries at
once. Only failed attempts wait: a task whose worker was lost goes back to the queue at once.
"""

from __future__ import annotations

from models.jobstore import JobRecord

DEFAULT_RETRY_DELAY_S = 10.0
RETRY_DELAY_CAP_S = 600.0
MAX_RETRY_DELAY_S = 86_400.0  # what jobs.submit accepts


def retry_delay(job: JobRecord, failed_attempts: int) -> float:
    """Seconds to wait after the `failed_attempts`-th failed attempt (1 for the first)."""
    base = DEFAULT_RETRY_DELAY_S if job.retry_delay_s is None else job.retry_delay_s
    if base <= 0 or failed_attempts < 1:
        return 0.0
    cap = max(RETRY_DELAY_CAP_S, base)
    # The exponent is bounded so a job with 100 attempts never builds a huge float.
    return float(min(cap, base * 2 ** min(failed_attempts - 1, 32)))
