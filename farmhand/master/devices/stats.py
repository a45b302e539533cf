"""Drinking sessions and pour statistics, kept up to date pour by pour (Kegbot Server's stats).

Theory of operation. Pours come in the order they end. A pour that starts within `gap_s`
(Kegbot's DRINK_SESSION_TIME_MINUTES, 90) of the current session's end joins it; otherwise it
opens a new session. Every pour adds to the totals of three scopes — the system, its keg, its
drinker — so `stats.get` reads a few counters and never scans the pours. At start the stored
pours are replayed once, oldest first, which gives the same sessions and ids as before.
"""

from __future__ import annotations

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
    drinkers: set[str] = field(default_factory=set)

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
    largest_ml: float = 0.0
    by_drinker: dict[str, float] = field(default_factory=dict)
    by_weekday: dict[str, float] = field(default_factory=dict)
    sessions: int = 0
    last_session: int = 0

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

    def load(self, pours: list[PourRecord]) -> None:
        """Replay the stored pours (any order: they are sorted by end)."""
        for pour in sorted(pours, key=lambda p: (p.end, p.id)):
            self.add(pour)

    def add(self, pour: PourRecord) -> DrinkSession:
        """Count one recorded pour; the session it belongs to (new or not)."""
        current = self.sessions[-1] if self.sessions else None
        if current is None or pour.start - current.end > self.gap_s:
            current = DrinkSession(id=len(self.sessions) + 1, start=pour.start, end=pour.end)
            self.sessions.append(current)
        drinker = pour.username or GUEST
        current.end = max(current.end, pour.end)
        current.volume_ml += pour.volume_ml
        current.pours += 1
        current.drinkers.add(drinker)
        weekday = WEEKDAYS[int(pour.start // 86400 + 3) % 7]  # UTC; 1970-01-01 was a Thursday
        scopes: list[Scope] = [("system", None), ("user", drinker)]
        if pour.keg_id is not None:
            scopes.append(("keg", pour.keg_id))
        for scope in scopes:
            totals = self._totals.setdefault(scope, Totals())
            totals.volume_ml += pour.volume_ml
            totals.pours += 1
            totals.largest_ml = max(totals.largest_ml, pour.volume_ml)
            totals.by_drinker[drinker] = totals.by_drinker.get(drinker, 0.0) + pour.volume_ml
            totals.by_weekday[weekday] = totals.by_weekday.get(weekday, 0.0) + pour.volume_ml
            if totals.last_session != current.id:
                totals.last_session = current.id
                totals.sessions += 1
        return current

    def get(self, scope: Scope) -> dict[str, Any]:
        return self._totals.get(scope, Totals()).view()

    def has(self, scope: Scope) -> bool:
        return scope in self._totals

    def session_list(self, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` sessions, newest first."""
        return [session.view() for session in reversed(self.sessions[-limit:])] if limit else []
