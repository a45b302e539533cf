"""Backoff for the dashboard's password logins: per user name, per client address, and per
device cookie (a browser that has logged in as that user before).

Each key gets a few free failures, then every further try must wait 1, 2, 4 … seconds up to a
cap, and a quiet while forgets it all. An attempt counts as a failure when it starts (so 100
parallel guesses are not all let through before the first answer) and is given back when it
succeeds or gets no answer. A browser with a device cookie for the user is throttled on that
cookie alone: an attacker hammering a name slows down the attacker, not the user's own browser.
Memory is bounded (least recently used entries go first). Time is passed in.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

Key = tuple[str, str]  # ("user", name) | ("ip", address) | ("device", token)


@dataclass(frozen=True)
class Limit:
    free: int  # failures before any wait
    max_delay_s: float
    forget_after_s: float  # a key quiet this long after its last wait is forgotten


USER_LIMIT = Limit(free=5, max_delay_s=900.0, forget_after_s=3600.0)
# Higher: several people (an office behind one NAT address) mistype their passwords.
IP_LIMIT = Limit(free=20, max_delay_s=900.0, forget_after_s=3600.0)
DEVICE_LIMIT = Limit(free=5, max_delay_s=60.0, forget_after_s=3600.0)
LIMITS = {"user": USER_LIMIT, "ip": IP_LIMIT, "device": DEVICE_LIMIT}
MAX_ENTRIES = 10_000


def login_keys(username: str, address: str, device: str | None) -> list[Key]:
    """The keys an attempt is throttled on; `device` is a device token already known to
    belong to `username`."""
    if device:
        return [("device", device)]
    return [("user", username[:64]), ("ip", address)]


@dataclass
class _Bucket:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._buckets: OrderedDict[Key, _Bucket] = OrderedDict()
        self._max_entries = max_entries

    def begin(self, keys: list[Key], now: float) -> float:
        """0 if the attempt may go on (it is counted as failed until `succeeded`), else the
        seconds to wait. A refused attempt counts for nothing."""
        wait = max((self._wait(key, now) for key in keys), default=0.0)
        if wait > 0:
            return wait
        for key in keys:
            self._count(key, now)
        return 0.0

    def succeeded(self, keys: list[Key]) -> None:
        """The password was right: the user's (or device's) record goes, the address gets
        its try back."""
        for key in keys:
            if key[0] == "ip":
                self._give_back(key)
            else:
                self._buckets.pop(key, None)

    def abandoned(self, keys: list[Key]) -> None:
        """No password was checked (the master did not answer): the attempt does not count."""
        for key in keys:
            self._give_back(key)

    def failures(self, key: Key) -> int:
        bucket = self._buckets.get(key)
        return bucket.failures if bucket else 0

    def size(self) -> int:
        return len(self._buckets)

    def _wait(self, key: Key, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        limit = LIMITS[key[0]]
        if now >= max(bucket.locked_until, bucket.last_failure) + limit.forget_after_s:
            del self._buckets[key]
            return 0.0
        return max(0.0, bucket.locked_until - now)

    def _count(self, key: Key, now: float) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket()
            while len(self._buckets) > self._max_entries:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        limit = LIMITS[key[0]]
        bucket.failures += 1
        bucket.last_failure = now
        over = bucket.failures - limit.free
        if over > 0:
            bucket.locked_until = now + min(limit.max_delay_s, 2.0 ** min(over - 1, 30))

    def _give_back(self, key: Key) -> None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return
        bucket.failures = max(0, bucket.failures - 1)
        if bucket.failures <= LIMITS[key[0]].free:
            bucket.locked_until = 0.0


class DeviceCookies:
    """Random tokens given to a browser at a successful login, each naming its user."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._max_entries = max_entries

    def issue(self, username: str) -> str:
        token = secrets.token_urlsafe(24)
        self._owners[token] = username
        while len(self._owners) > self._max_entries:
            self._owners.popitem(last=False)
        return token

    def owner(self, token: str | None) -> str | None:
        if not token:
            return None
        owner = self._owners.get(token)
        if owner is not None:
            self._owners.move_to_end(token)
        return owner

    def size(self) -> int:
        return len(self._owners)


class LoginGuard:
    """What the login routes share for one dashboard: the throttle, the device cookies, and
    the clock their `now` comes from (a test sets its own)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.throttle = LoginThrottle()
        self.devices = DeviceCookies()
        self.clock = clock
