"""Drinking sessions and pour statistics, kept up to date pour by pour (Kegbot Server's stats).

Theory of operation. Pours come in the order they end. A pour that starts within `gap_s`
(Kegbot's DRINK_SESSION_TIME_MINUTES, 90) of the current session's end joins it; otherwise it
opens a new session. Every pour adds to the totals of three scopes — the system, its keg, its
drinker — so `stats.get` reads a few counters and never scans the pours. At start the stored
pours are replayed once, oldest first, which gives the same sessions and ids as before.

Corrections (a pour canceled, marked as spill, reassigned or resized) go through `correct(old,
new)`: the old pour's share comes out of its session and scopes, the new one's goes into the
same session. Every scope counts its pours per session and keeps its pour volumes in a heap
with lazy deletion, so the sessions count and the largest pour stay right without a scan.
Spilled and canceled pours count nowhere. A session keeps its span when a pour leaves it (it is
not split); one left without pours is no longer listed. After a restart the replay of what is
stored may then number the sessions differently.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from models.devicestore import PourRecord
from protocol.times import iso_utc

DRINK_SESSION_GAP_S = 90 * 60.0
GUEST = "guest"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Scope = tuple[str, Any]  # ("system", None), ("keg", id), ("user", name)


@dataclass
class DrinkSession:
    id: int
    start: float
    end: float
    volume_ml: float = 0.0
    pours: int = 0
    drinkers: Counter[str] = field(default_factory=Counter)  # pours per drinker

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "start": iso_utc(self.start),
            "end": iso_utc(self.end),
            "volume_ml": round(self.volume_ml, 1),
            "pours": self.pours,
            "drinkers": sorted(self.drinkers),
        }


@dataclass
class Totals:
    volume_ml: float = 0.0
    pours: int = 0
    by_drinker: dict[str, float] = field(default_factory=dict)
    by_weekday: dict[str, float] = field(default_factory=dict)
    session_pours: Counter[int] = field(default_factory=Counter)  # session id → pours
    sizes: list[float] = field(default_factory=list)  # a max-heap of -volume
    removed: Counter[float] = field(default_factory=Counter)  # sizes left in the heap, gone

    @property
    def sessions(self) -> int:
        return len(self.session_pours)

    def count(self, session: int, drinker: str, weekday: str, volume: float, sign: int) -> None:
        self.volume_ml += sign * volume
        self.pours += sign
        _bump(self.by_drinker, drinker, sign * volume)
        _bump(self.by_weekday, weekday, sign * volume)
        self.session_pours[session] += sign
        if self.session_pours[session] <= 0:
            del self.session_pours[session]
        if sign > 0:
            heapq.heappush(self.sizes, -volume)
        else:
            self.removed[-volume] += 1
        while self.sizes and self.removed[self.sizes[0]]:
            self.removed[self.sizes[0]] -= 1
            heapq.heappop(self.sizes)

    @property
    def largest_ml(self) -> float:
        return -self.sizes[0] if self.sizes else 0.0

    def view(self) -> dict[str, Any]:
        return {
            "total_volume_ml": round(self.volume_ml, 1),
            "total_pours": self.pours,
            "volume_by_drinker": {k: round(v, 1) for k, v in sorted(self.by_drinker.items())},
            "volume_by_weekday": {day: round(self.by_weekday.get(day, 0.0), 1) for day in WEEKDAYS},
            "largest_pour_ml": round(self.largest_ml, 1),
            "sessions": self.sessions,
        }


class PourStats:
    def __init__(self, gap_s: float = DRINK_SESSION_GAP_S) -> None:
        self.gap_s = gap_s
        self.sessions: list[DrinkSession] = []
        self._totals: dict[Scope, Totals] = {}
        self._session_of: dict[int, int] = {}  # pour id → session id

    def load(self, pours: list[PourRecord]) -> None:
        """Replay the stored pours (any order: they are sorted by end)."""
        for pour in sorted(pours, key=lambda p: (p.end, p.id)):
            self.add(pour)

    def add(self, pour: PourRecord) -> DrinkSession:
        """Count one recorded pour; the session it belongs to (new or not). A spilled or
        canceled pour is not counted, but still joins (or opens) a session's span."""
        current = self.sessions[-1] if self.sessions else None
        if current is None or pour.start - current.end > self.gap_s:
            current = DrinkSession(id=len(self.sessions) + 1, start=pour.start, end=pour.end)
            self.sessions.append(current)
        current.end = max(current.end, pour.end)
        self._session_of[pour.id] = current.id
        self._count(current, pour, +1)
        return current

    def correct(self, old: PourRecord, new: PourRecord) -> None:
        """Replace a counted pour by its corrected self (same id) in the same session."""
        session_id = self._session_of.get(old.id)
        if session_id is None:
            return  # never counted (recorded before the stats were loaded): nothing to move
        session = self.sessions[session_id - 1]
        self._count(session, old, -1)
        self._count(session, new, +1)

    def _count(self, session: DrinkSession, pour: PourRecord, sign: int) -> None:
        if pour.spill or pour.canceled:
            return
        drinker = pour.username or GUEST
        session.volume_ml += sign * pour.volume_ml
        session.pours += sign
        session.drinkers[drinker] += sign
        if session.drinkers[drinker] <= 0:
            del session.drinkers[drinker]
        weekday = WEEKDAYS[int(pour.start // 86400 + 3) % 7]  # UTC; 1970-01-01 was a Thursday
        scopes: list[Scope] = [("system", None), ("user", drinker)]
        if pour.keg_id is not None:
            scopes.append(("keg", pour.keg_id))
        for scope in scopes:
            totals = self._totals.get(scope)
            if totals is None:
                totals = self._totals[scope] = Totals()
            totals.count(session.id, drinker, weekday, pour.volume_ml, sign)

    def get(self, scope: Scope) -> dict[str, Any]:
        return self._totals.get(scope, Totals()).view()

    def has(self, scope: Scope) -> bool:
        return scope in self._totals

    def session_list(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` sessions with pours, newest first."""
        views: list[dict[str, Any]] = []
        for session in reversed(self.sessions):
            if len(views) >= limit:
                break
            if session.pours > 0:
                views.append(session.view())
        return views


def _bump(totals: dict[str, float], key: str, delta: float) -> None:
    value = totals.get(key, 0.0) + delta
    if abs(value) < 1e-6:
        totals.pop(key, None)
    else:
        totals[key] = value
