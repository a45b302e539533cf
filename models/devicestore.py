"""Storage of the hardware side: users, auth tokens, taps, kegs, pours and sensor readings.

The master keeps users, tokens, taps and active kegs in memory and is the only writer: it loads
them at start and saves each change as it happens (a handful per minute). Pours are written as
they end, together with the keg they drew from (`record_pour`, one transaction). Readings are
the bulk: agents report sensors every few seconds and the master hands them over in batches
(`insert_readings`), then prunes them by age. Everything runs in the Store's DB thread
(`Store.call`) with fixed SQL strings derived from models/schema.py; readings go in with sqlite3
executemany or a PostgreSQL binary COPY.
Queries go through `Store.read`, so they keep answering while a full SQLite disk refuses writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import starmap
from operator import attrgetter
from typing import Any

import orjson

from models import schema
from models.store import Store
from models.tables import Table, copy_rows, quoted, record_fields

USER = Table.of(schema.User)
TOKEN = Table.of(schema.AuthToken)
TAP = Table.of(schema.Tap)
KEG = Table.of(schema.Keg)
POUR = Table.of(schema.Pour)
READING = Table.of(schema.Reading)
SENSOR_PLACE = Table.of(schema.SensorPlace)
ALERT_RULE = Table.of(schema.AlertRule)


@dataclass(slots=True)
class UserRecord:
    id: int
    username: str
    display_name: str
    password_hash: str | None
    admin: bool
    enabled: bool
    created: float


@dataclass(slots=True)
class TokenRecord:
    id: int
    reader: str
    token: str
    username: str
    created: float
    enabled: bool


@dataclass(slots=True)
class TapRecord:
    name: str
    meter: str
    ticks_per_ml: float
    output: str | None
    idle_s: float
    auth_agents: list[str]
    created: float


@dataclass(slots=True)
class KegRecord:
    id: int
    tap: str
    beverage: str
    volume_ml: float
    poured_ml: float
    started: float
    ended: float | None
    abv: float | None = None
    style: str = ""
    ibu: float | None = None
    srm: float | None = None
    size: str = ""
    image: str | None = None


@dataclass(slots=True)
class PourRecord:
    id: int
    tap: str
    keg_id: int | None
    username: str | None
    ticks: int
    volume_ml: float
    start: float  # column "started": START and END are reserved words in SQL
    end: float  # column "ended"
    spill: bool = False  # left the keg, drunk by nobody: out of the stats
    canceled: bool = False  # went back into the keg: out of the stats and the listings


@dataclass(slots=True)
class SensorPlaceRecord:
    sensor: str
    tap: str | None
    fridge: str | None
    created: float


@dataclass(slots=True)
class AlertRuleRecord:
    id: int
    kind: str  # above, below, silent
    target: str
    value: float | None
    for_s: float
    created: float


@dataclass(slots=True)
class ReadingRecord:
    sensor: str
    kind: str
    value: float
    unit: str
    time: float
    agent: str


# Records list the columns in table order, so a fetched row IS the constructor's argument list
# and attrgetter builds a written row in C. A reading's id is the database's.
_READING_COLUMNS = READING.but("id")
_user_row = attrgetter(*record_fields(UserRecord, USER.columns))
_token_row = attrgetter(*record_fields(TokenRecord, TOKEN.columns))
record_fields(TapRecord, TAP.columns)
_keg_row = attrgetter(*record_fields(KegRecord, KEG.columns))
_POUR_FIELDS = record_fields(PourRecord, POUR.columns, {"started": "start", "ended": "end"})
_pour_row = attrgetter(*_POUR_FIELDS)
_place_row = attrgetter(*record_fields(SensorPlaceRecord, SENSOR_PLACE.columns))
_rule_row = attrgetter(*record_fields(AlertRuleRecord, ALERT_RULE.columns))
_reading_row = attrgetter(*record_fields(ReadingRecord, _READING_COLUMNS))
_PG_COPY_READINGS = READING.copy_in(_READING_COLUMNS)
_PG_READING_TYPES = READING.types(_READING_COLUMNS)

_INF = float("inf")


def _where(conditions: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


class DeviceStore:
    """Hardware and auth tables on top of a Store; every statement runs in its DB thread."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pg = store.backend == "postgresql"
        p = store.db.param
        self._max_ids = "SELECT " + ", ".join(
            f'(SELECT COALESCE(MAX(id), 0) FROM "{t}")'
            for t in ("user", "auth_token", "keg", "pour")
        )
        self._max_rule_id = 'SELECT COALESCE(MAX(id), 0) FROM "alert_rule"'
        self._select_users = USER.select(' ORDER BY "id"')
        self._select_tokens = TOKEN.select(' ORDER BY "id"')
        self._select_taps = TAP.select(' ORDER BY "name"')
        self._select_kegs = KEG.select(' ORDER BY "id"')
        self._select_active_kegs = KEG.select(' WHERE "ended" IS NULL ORDER BY "id"')
        self._upsert_user = USER.upsert(("id",), USER.values(p))
        self._update_password_hash = USER.update(p, ("password_hash",))
        self._upsert_token = TOKEN.upsert(("id",), TOKEN.values(p))
        self._delete_token = f'DELETE FROM "auth_token" WHERE "id" = {p}'
        self._upsert_tap = TAP.upsert(("name",), TAP.values(p))
        self._upsert_keg = KEG.upsert(("id",), KEG.values(p))
        self._insert_pour = POUR.insert(p)
        self._upsert_pour = POUR.upsert(("id",), POUR.values(p))
        self._select_pour = POUR.select(f' WHERE "id" = {p}')
        self._select_places = SENSOR_PLACE.select(' ORDER BY "sensor"')
        self._upsert_place = SENSOR_PLACE.upsert(("sensor",), SENSOR_PLACE.values(p))
        self._delete_place = f'DELETE FROM "sensor_place" WHERE "sensor" = {p}'
        self._select_rules = ALERT_RULE.select(' ORDER BY "id"')
        self._upsert_rule = ALERT_RULE.upsert(("id",), ALERT_RULE.values(p))
        self._delete_rule = f'DELETE FROM "alert_rule" WHERE "id" = {p}'
        # One fixed statement per filter combination, so each can use its own index: (tap,
        # ended), (username, ended) or (ended), read newest first and stopped at LIMIT.
        # A canceled pour stays in the table but not in the listings (a spill is listed).
        by_user = {"": [], "user": [f"username = {p}"], "guest": ["username IS NULL"]}
        live = ['NOT "canceled"']
        self._select_pours = {
            (by_tap, user): POUR.select(
                _where([f"tap = {p}"] * by_tap + where + live)
                + f" ORDER BY ended DESC, id DESC LIMIT {p}"
            )
            for by_tap in (False, True)
            for user, where in by_user.items()
        }
        # NULL (the guest, a pour without keg) sorts last on both backends.
        totals = 'SELECT {0}, COUNT(*), SUM(volume_ml) FROM "pour" WHERE NOT "canceled" '
        totals += "GROUP BY {0} "
        totals += "ORDER BY {0} IS NULL, {0}"
        self._totals_by_user = totals.format("username")
        self._totals_by_keg = totals.format("keg_id")
        self._insert_reading = READING.insert(p, _READING_COLUMNS)
        # An open end of the window is bound as ±infinity: three statements instead of eight.
        # Newest first (an index read backwards) so LIMIT keeps the newest rows. The console's
        # plain "newest N" has no WHERE: PostgreSQL, before it has statistics, would guess the
        # ±infinity window selective and sort the whole table.
        select = READING.select(columns=_READING_COLUMNS)
        self._select_newest_readings = f'{select} ORDER BY "time" DESC, id DESC LIMIT {p}'
        window = f'"time" >= {p} AND "time" < {p}'
        self._select_readings = f'{select} WHERE {window} ORDER BY "time" DESC, id DESC LIMIT {p}'
        # One sensor: sensor = X with since <= time < until, written as a range of row values
        # so that PostgreSQL must walk (sensor, time): with "sensor = X" it drops sensor from
        # the ORDER BY and may prefer scanning (time) backwards for X's rows, reading every
        # newer row of every sensor when X went silent long ago.
        newest = f'ORDER BY sensor DESC, "time" DESC, id DESC LIMIT {p}'
        self._select_sensor_readings = (
            f'{select} WHERE (sensor, "time") >= ({p}, {p}) AND (sensor, "time") < ({p}, {p}) '
            + newest
        )
        # The newest row of each sensor without reading the table: hop down the (sensor, time)
        # index from one sensor's newest row to the next's (a loose index scan), one probe each.
        hop = (
            '(SELECT n.id FROM "reading" AS n {} ORDER BY n.sensor DESC, n."time" DESC, '
            "n.id DESC LIMIT 1)"
        )
        self._latest_readings = (
            'WITH RECURSIVE s(id, sensor) AS (SELECT r.id, r.sensor FROM "reading" AS r '
            f"WHERE r.id = {hop.format('')} UNION ALL SELECT r.id, r.sensor FROM s "
            f'JOIN "reading" AS r ON r.id = {hop.format("WHERE n.sensor < s.sensor")}) '
            f'SELECT {quoted(_READING_COLUMNS, "r.")} FROM s JOIN "reading" AS r ON r.id = s.id '
            "ORDER BY r.sensor"
        )
        self._prune_readings = f'DELETE FROM "reading" WHERE "time" < {p}'

    # -- public API (any greenlet) ---------------------------------------------------------------

    def max_ids(self) -> dict[str, int]:
        """Highest id of "user", "token", "keg" and "pour" (0 for none): where the master counts."""
        return self._store.call(self._do_max_ids)

    def max_rule_id(self) -> int:
        """Highest alert rule id (0 for none)."""
        row = self._store.call(self._fetch_all, self._max_rule_id)
        return int(row[0][0])

    def load_users(self) -> list[UserRecord]:
        """Every user, ordered by id."""
        return self._store.call(self._do_load_users)

    def load_tokens(self) -> list[TokenRecord]:
        """Every token, ordered by id."""
        return self._store.call(self._do_load_tokens)

    def load_taps(self) -> list[TapRecord]:
        """Every tap, ordered by name."""
        return self._store.call(self._do_load_taps)

    def load_kegs(self, active_only: bool = True) -> list[KegRecord]:
        """The kegs still on tap (ended IS NULL), or all of them; ordered by id."""
        return self._store.call(self._do_load_kegs, active_only)

    def save_user(self, user: UserRecord) -> None:
        """Insert or update the user by id; a username taken by another id raises IntegrityError."""
        self._store.call(self._store.db.execute_sql, self._upsert_user, _user_row(user))

    def update_password_hash(self, user_id: int, password_hash: str) -> None:
        """Replace one user's password hash (a stronger one, after a login); nothing else."""
        self._store.call(
            self._store.db.execute_sql, self._update_password_hash, (password_hash, user_id)
        )

    def save_token(self, token: TokenRecord) -> None:
        """Insert or update the token by id; a (reader, token) of another id: IntegrityError."""
        self._store.call(self._store.db.execute_sql, self._upsert_token, _token_row(token))

    def delete_token(self, token_id: int) -> None:
        """Delete the token; an unknown id is not an error."""
        self._store.call(self._store.db.execute_sql, self._delete_token, (token_id,))

    def save_tap(self, tap: TapRecord) -> None:
        """Insert or update the tap by name."""
        self._store.call(self._do_save_tap, tap)

    def save_keg(self, keg: KegRecord) -> None:
        """Insert or update the keg by id."""
        self._store.call(self._store.db.execute_sql, self._upsert_keg, _keg_row(keg))

    def record_pour(self, pour: PourRecord, keg: KegRecord | None) -> None:
        """Insert the pour and save `keg` (its new poured_ml) in one transaction: both or none."""
        self._store.call(self._do_record_pour, pour, keg)

    def get_pour(self, pour_id: int) -> PourRecord | None:
        """One pour by id, canceled or not; None when there is no such pour."""
        return self._store.read(self._do_get_pour, pour_id)

    def correct_pour(self, pour: PourRecord, kegs: Sequence[KegRecord]) -> None:
        """Save a corrected pour and the kegs whose poured_ml it changed, in one transaction."""
        self._store.call(self._do_correct_pour, pour, kegs)

    def load_places(self) -> list[SensorPlaceRecord]:
        """Where each placed sensor is, ordered by sensor."""
        rows = self._store.call(self._fetch_all, self._select_places)
        return list(starmap(SensorPlaceRecord, rows))

    def save_place(self, place: SensorPlaceRecord) -> None:
        self._store.call(self._store.db.execute_sql, self._upsert_place, _place_row(place))

    def delete_place(self, sensor: str) -> None:
        self._store.call(self._store.db.execute_sql, self._delete_place, (sensor,))

    def load_rules(self) -> list[AlertRuleRecord]:
        """Every alert rule, ordered by id."""
        return list(starmap(AlertRuleRecord, self._store.call(self._fetch_all, self._select_rules)))

    def save_rule(self, rule: AlertRuleRecord) -> None:
        self._store.call(self._store.db.execute_sql, self._upsert_rule, _rule_row(rule))

    def delete_rule(self, rule_id: int) -> None:
        self._store.call(self._store.db.execute_sql, self._delete_rule, (rule_id,))

    def query_pours(
        self,
        tap: str | None = None,
        username: str | None = None,
        limit: int = 100,
        guest_only: bool = False,
    ) -> list[PourRecord]:
        """The newest `limit` pours (by end, newest first) of `tap` and of `username`, or of the
        guest (username NULL) with `guest_only`; None means any."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        if guest_only and username is not None:
            raise ValueError("guest_only and username exclude each other")
        by_user = "guest" if guest_only else ("user" if username is not None else "")
        sql = self._select_pours[tap is not None, by_user]
        params = [v for v in (tap, username) if v is not None]
        return self._store.read(self._do_query_pours, sql, (*params, limit))

    def pour_totals(self) -> dict[str, list[dict[str, Any]]]:
        """Pour count and volume per user (None: the guest) and per keg (None: no keg), each
        ordered by key with None last: {"by_user": [{"username", "pours", "volume_ml"}, …],
        "by_keg": [{"keg_id", "pours", "volume_ml"}, …]}."""
        return self._store.read(self._do_pour_totals)

    def insert_readings(self, readings: Sequence[ReadingRecord]) -> None:
        """Insert the readings in one transaction (executemany on SQLite, COPY on PostgreSQL)."""
        if readings:
            self._store.call(self._do_insert_readings, readings)

    def query_readings(
        self,
        sensor: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[ReadingRecord]:
        """Readings of `sensor` (None: all) with since <= time < until (None: open), ordered by
        time ascending; when more than `limit` match, the newest `limit` of them."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        window = (-_INF if since is None else since, _INF if until is None else until)
        params: tuple[Any, ...]
        if sensor is None and since is None and until is None:
            sql, params = self._select_newest_readings, (limit,)
        elif sensor is None:
            sql, params = self._select_readings, (*window, limit)
        else:
            sql = self._select_sensor_readings
            params = (sensor, window[0], sensor, window[1], limit)
        return self._store.read(self._do_query_readings, sql, params)

    def latest_readings(self) -> list[ReadingRecord]:
        """The newest reading of each sensor, ordered by sensor."""
        return self._store.read(self._do_latest_readings)

    def prune_readings(self, before: float) -> int:
        """Delete the readings with time < `before`; return how many were deleted."""
        return self._store.call(self._do_prune_readings, before)

    # -- DB thread -------------------------------------------------------------------------------

    def _do_max_ids(self) -> dict[str, int]:
        row = self._store.db.execute_sql(self._max_ids).fetchone()
        return dict(zip(("user", "token", "keg", "pour"), map(int, row), strict=True))

    def _do_load_users(self) -> list[UserRecord]:
        rows = self._store.db.execute_sql(self._select_users).fetchall()
        return [
            UserRecord(id_, name, display, pw, bool(admin), bool(enabled), created)
            for id_, name, display, pw, admin, enabled, created in rows
        ]

    def _do_load_tokens(self) -> list[TokenRecord]:
        rows = self._store.db.execute_sql(self._select_tokens).fetchall()
        return [
            TokenRecord(id_, reader, token, username, created, bool(enabled))
            for id_, reader, token, username, created, enabled in rows
        ]

    def _do_load_taps(self) -> list[TapRecord]:
        rows = self._store.db.execute_sql(self._select_taps).fetchall()
        loads = orjson.loads
        return [
            TapRecord(name, meter, tpm, output, idle_s, loads(agents), created)
            for name, meter, tpm, output, idle_s, agents, created in rows
        ]

    def _do_load_kegs(self, active_only: bool) -> list[KegRecord]:
        sql = self._select_active_kegs if active_only else self._select_kegs
        return list(starmap(KegRecord, self._store.db.execute_sql(sql).fetchall()))

    def _do_save_tap(self, tap: TapRecord) -> None:
        row = (
            tap.name, tap.meter, tap.ticks_per_ml, tap.output, tap.idle_s,
            orjson.dumps(tap.auth_agents).decode(), tap.created,
        )  # fmt: skip
        self._store.db.execute_sql(self._upsert_tap, row)

    def _do_record_pour(self, pour: PourRecord, keg: KegRecord | None) -> None:
        with self._store.transaction() as cursor:
            cursor.execute(self._insert_pour, _pour_row(pour))
            if keg is not None:
                cursor.execute(self._upsert_keg, _keg_row(keg))

    def _do_get_pour(self, pour_id: int) -> PourRecord | None:
        row = self._store.db.execute_sql(self._select_pour, (pour_id,)).fetchone()
        return None if row is None else PourRecord(*row)

    def _do_correct_pour(self, pour: PourRecord, kegs: Sequence[KegRecord]) -> None:
        with self._store.transaction() as cursor:
            cursor.execute(self._upsert_pour, _pour_row(pour))
            for keg in kegs:
                cursor.execute(self._upsert_keg, _keg_row(keg))

    def _fetch_all(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self._store.db.execute_sql(sql).fetchall())

    def _do_query_pours(self, sql: str, params: tuple[Any, ...]) -> list[PourRecord]:
        return list(starmap(PourRecord, self._store.db.execute_sql(sql, params).fetchall()))

    def _do_pour_totals(self) -> dict[str, list[dict[str, Any]]]:
        db = self._store.db
        by_user = db.execute_sql(self._totals_by_user).fetchall()
        by_keg = db.execute_sql(self._totals_by_keg).fetchall()
        return {
            "by_user": [
                {"username": u, "pours": int(n), "volume_ml": float(v)} for u, n, v in by_user
            ],
            "by_keg": [{"keg_id": k, "pours": int(n), "volume_ml": float(v)} for k, n, v in by_keg],
        }

    def _do_insert_readings(self, readings: Sequence[ReadingRecord]) -> None:
        with self._store.transaction() as cursor:
            if self._pg:
                copy_rows(cursor, _PG_COPY_READINGS, _PG_READING_TYPES, map(_reading_row, readings))
            else:
                cursor.executemany(self._insert_reading, map(_reading_row, readings))

    def _do_query_readings(self, sql: str, params: tuple[Any, ...]) -> list[ReadingRecord]:
        rows = self._store.db.execute_sql(sql, params).fetchall()
        rows.reverse()  # fetched newest first so that LIMIT keeps the newest
        return list(starmap(ReadingRecord, rows))

    def _do_latest_readings(self) -> list[ReadingRecord]:
        rows = self._store.db.execute_sql(self._latest_readings).fetchall()
        return list(starmap(ReadingRecord, rows))

    def _do_prune_readings(self, before: float) -> int:
        cursor = self._store.db.execute_sql(self._prune_readings, (before,))
        return int(cursor.rowcount)
