"""Pour corrections, as Kegbot Server's admin makes them: cancel a pour (its volume goes back
into the keg), mark it as a spill (it left the keg but nobody drank it), give it to another
drinker, or change its volume.

Theory of operation. A correction reads the stored pour, makes the corrected copy (same id),
works out how much the keg's poured volume changes (a canceled pour takes nothing from its keg,
a spill does), and saves the pour and the keg in one transaction. Only then the stats move the
pour's share (`PourStats.correct`) and the keg's level lines are checked (a larger volume can
make it low). The method calling it is a write, so the audit log records who corrected what.
"""

from __future__ import annotations

import dataclasses
import logging

from models.devicestore import DeviceStore, KegRecord, PourRecord
from protocol.errors import conflict, invalid_params, not_found

from ..events import EventBus
from .levels import notify_levels
from .people import People
from .stats import GUEST, PourStats
from .taps import MIN_POUR_ML, TapBoard, keg_view

log = logging.getLogger(__name__)

MAX_POUR_ML = 100_000.0


def _drawn_ml(pour: PourRecord) -> float:
    """What the pour took from its keg: everything but a canceled pour."""
    return 0.0 if pour.canceled else pour.volume_ml


class PourCorrections:
    def __init__(
        self,
        store: DeviceStore,
        taps: TapBoard,
        people: People,
        stats: PourStats,
        events: EventBus,
    ) -> None:
        self.store = store
        self.taps = taps
        self.people = people
        self.stats = stats
        self.events = events

    def cancel(self, pour_id: int) -> PourRecord:
        return self._apply(self._pour(pour_id), canceled=True)

    def update(
        self,
        pour_id: int,
        username: str | None = None,
        volume_ml: float | None = None,
        spill: bool | None = None,
    ) -> PourRecord:
        """Reassign (`username`, "guest" for nobody), resize or (un)mark as spill; None: keep."""
        old = self._pour(pour_id)
        changes: dict[str, object] = {}
        if username is not None:
            if username != GUEST and username not in self.people.users:
                raise not_found(f"no user {username!r}", "no_such_user")
            changes["username"] = None if username == GUEST else username
        if volume_ml is not None:
            if not MIN_POUR_ML <= volume_ml <= MAX_POUR_ML:
                raise invalid_params(
                    f"volume_ml must be {MIN_POUR_ML:g} to {MAX_POUR_ML:g} ml", "bad_volume"
                )
            changes["volume_ml"] = round(volume_ml, 1)
        if spill is not None:
            changes["spill"] = spill
        if not changes:
            raise invalid_params("pours.update: give username, volume_ml or spill", "no_change")
        return self._apply(old, **changes)

    def _pour(self, pour_id: int) -> PourRecord:
        pour = self.store.get_pour(pour_id)
        if pour is None:
            raise not_found(f"no pour {pour_id}", "no_such_pour")
        pour.spill, pour.canceled = bool(pour.spill), bool(pour.canceled)
        if pour.canceled:
            raise conflict(f"pour {pour_id} was canceled", "pour_canceled")
        return pour

    def _keg(self, keg_id: int | None) -> KegRecord | None:
        if keg_id is None:
            return None
        for tap in self.taps.taps.values():
            if tap.keg is not None and tap.keg.id == keg_id:
                return tap.keg  # on tap: the master's own record
        for keg in self.store.load_kegs(active_only=False):
            if keg.id == keg_id:
                return keg
        return None

    def _apply(self, old: PourRecord, **changes: object) -> PourRecord:
        new = dataclasses.replace(old, **changes)  # type: ignore[arg-type]
        delta = _drawn_ml(new) - _drawn_ml(old)
        keg = self._keg(old.keg_id) if delta else None
        poured_before = keg.poured_ml if keg is not None else 0.0
        saved = dataclasses.replace(keg, poured_ml=max(0.0, poured_before + delta)) if keg else None
        self.store.correct_pour(new, [saved] if saved is not None else [])
        if keg is not None and saved is not None:
            keg.poured_ml = saved.poured_ml  # stored: now the live keg may change
        self.stats.correct(old, new)
        log.info(
            "pour %d corrected: %s", old.id, ", ".join(f"{k}={v!r}" for k, v in changes.items())
        )
        if keg is not None and delta > 0:
            notify_levels(self.events, keg, poured_before, keg_view(keg))
        return new
