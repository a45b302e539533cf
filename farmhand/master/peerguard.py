"""Defences against hostile peers that need memory across connections: rate-limited logging of
refusals (an attacker must not be able to fill the log) and a per-host budget of failed logins.

Everything takes `now` (monotonic seconds) from the caller; `PeerGuard.tick(now)` writes the
summaries of what was held back and forgets hosts that went quiet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# A host may fail this many hellos or console logins at once, then one more every REFILL_S.
FAILURE_BURST = 10
FAILURE_REFILL_S = 6.0
# At most one log line per kind of refusal and host per interval; the rest become a summary.
SUMMARY_INTERVAL_S = 60.0
# Bounds the memory an attacker with many source addresses can make us spend.
MAX_TRACKED_HOSTS = 4096
OTHER_HOSTS = "(other hosts)"


@dataclass(slots=True)
class _Held:
    logged_at: float
    held: int = 0


class LogLimiter:
    """`limiter.warn(host, now, "HTTP request from %s", host)`: the first event per host in an
    interval is logged, later ones are counted and summarised by `flush`."""

    def __init__(
        self, what: str, interval_s: float = SUMMARY_INTERVAL_S, level: int = logging.WARNING
    ) -> None:
        self.what = what
        self.interval_s = interval_s
        self.level = level
        self.total = 0
        self._hosts: dict[str, _Held] = {}

    def warn(self, host: str, now: float, message: str, *args: object) -> None:
        self.total += 1
        if host not in self._hosts and len(self._hosts) >= MAX_TRACKED_HOSTS:
            host = OTHER_HOSTS
        held = self._hosts.get(host)
        if held is None:
            self._hosts[host] = _Held(now)
            log.log(self.level, message, *args)
        elif now - held.logged_at >= self.interval_s:
            self._summarise(host, held, now)
            log.log(self.level, message, *args)
        else:
            held.held += 1

    def flush(self, now: float) -> None:
        for host, held in list(self._hosts.items()):
            if now - held.logged_at < self.interval_s:
                continue
            if held.held:
                self._summarise(host, held, now)
            else:
                del self._hosts[host]  # quiet for a whole interval: forget it

    def _summarise(self, host: str, held: _Held, now: float) -> None:
        if held.held:
            log.log(
                self.level,
                "%d more %s from %s in the last %.0f s (not logged one by one)",
                held.held,
                self.what,
                host,
                now - held.logged_at,
            )
        held.logged_at = now
        held.held = 0


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass
class FailureThrottle:
    """A token bucket of failures per peer host. While a host's bucket is empty, its login
    attempts are refused unchecked, so guessing, and the work and logging it causes, is slow."""

    burst: int = FAILURE_BURST
    refill_s: float = FAILURE_REFILL_S
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def wait_s(self, host: str, now: float) -> float:
        """0 when `host` may try now, else the seconds until it may."""
        bucket = self._refilled(host, now)
        if bucket is None or bucket.tokens >= 1.0:
            return 0.0
        return (1.0 - bucket.tokens) * self.refill_s

    def failed(self, host: str, now: float) -> None:
        bucket = self._refilled(host, now)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED_HOSTS:
                self.forget_idle(now)
            if len(self._buckets) >= MAX_TRACKED_HOSTS:
                host = OTHER_HOSTS
            bucket = self._buckets.setdefault(host, _Bucket(float(self.burst), now))
        bucket.tokens = max(0.0, bucket.tokens - 1.0)

    def forget_idle(self, now: float) -> None:
        """Drop hosts whose bucket is full again: they have nothing to remember."""
        for host in list(self._buckets):
            bucket = self._refilled(host, now)
            if bucket is not None and bucket.tokens >= self.burst:
                del self._buckets[host]

    def _refilled(self, host: str, now: float) -> _Bucket | None:
        bucket = self._buckets.get(host)
        if bucket is None and len(self._buckets) >= MAX_TRACKED_HOSTS:
            bucket = self._buckets.get(OTHER_HOSTS)
        if bucket is None:
            return None
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed / self.refill_s)
        bucket.updated = now
        return bucket


class PeerGuard:
    """The master's memory of hostile peers, shared by every connection."""

    def __init__(self) -> None:
        self.web_requests = LogLimiter("HTTP requests")
        self.bad_logins = LogLimiter("failed hellos and logins")
        self.login_failures = FailureThrottle()
        # Bad JSON and refused notifications get no reply to tell the peer: the log says it.
        self.bad_messages = LogLimiter("bad messages", level=logging.INFO)
        self.refused_notifications = LogLimiter("refused notifications")

    def tick(self, now: float) -> None:
        for limiter in (
            self.web_requests,
            self.bad_logins,
            self.bad_messages,
            self.refused_notifications,
        ):
            limiter.flush(now)
        self.login_failures.forget_idle(now)
