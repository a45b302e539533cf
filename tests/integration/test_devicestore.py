"""Hardware and auth storage contract tests, written once and run on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from models import migrations
from models.db import database_from_url
from models.devicestore import (
    AlertRuleRecord,
    DeviceStore,
    KegRecord,
    PourRecord,
    ReadingRecord,
    SensorPlaceRecord,
    TapRecord,
    TokenRecord,
    UserRecord,
)
from models.jobstore import JobStore
from models.schema import AuthToken, Keg, Pour, Reading, Tap, User
from models.store import Store

T0 = 1_700_000_000.0


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(database_url, tmp_path)
    s.open()
    yield s
    s.close()


@pytest.fixture
def devices(store: Store) -> DeviceStore:
    return DeviceStore(store)


def user(id_: int, username: str | None = None, **changes: object) -> UserRecord:
    record = UserRecord(
        id_, username or f"user{id_}", f"User {id_}", "scrypt$ab$cd", False, True, T0
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def token(id_: int, reader: str = "core.rfid", tok: str = "", **changes: object) -> TokenRecord:
    record = TokenRecord(id_, reader, tok or f"{id_:08x}", f"user{id_}", T0 + id_, True)
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def keg(id_: int, tap: str = "tap1", **changes: object) -> KegRecord:
    record = KegRecord(id_, tap, "Pale Ale", 19_550.0, 0.0, T0, None)
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def pour(
    id_: int, tap: str = "tap1", username: str | None = "alice", **changes: object
) -> PourRecord:
    record = PourRecord(id_, tap, 1, username, 1000 + id_, 300.0 + id_, T0 + id_, T0 + id_ + 5.5)
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def reading(sensor: str, time: float, value: float = 4.5, **changes: object) -> ReadingRecord:
    record = ReadingRecord(sensor, "temperature", value, "C", time, "keg1")
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


# -- migrations --------------------------------------------------------------------------------


def test_fresh_database_has_the_device_tables_matching_the_models(store: Store) -> None:
    assert migrations.latest_version() >= 3
    for model in (User, AuthToken, Tap, Keg, Pour, Reading):
        table = model._meta.table_name
        columns = {c.name for c in store.call(store.db.get_columns, table)}
        assert columns == {f.column_name for f in model._meta.sorted_fields}, table
    token_indexes = store.call(store.db.get_indexes, "auth_token")
    assert any(i.unique and i.columns == ["reader", "token"] for i in token_indexes)
    reading_indexes = [i.columns for i in store.call(store.db.get_indexes, "reading")]
    assert ["sensor", "time"] in reading_indexes and ["time"] in reading_indexes


def test_upgrade_from_version_2_keeps_jobs(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = database_from_url(database_url, tmp_path)
    db.connect()
    try:
        with monkeypatch.context() as m:
            m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:2])
            assert migrations.migrate(db) == 2
        assert not db.table_exists("pour")
        db.execute_sql(  # type: ignore[no-untyped-call]
            "INSERT INTO job (id, name, status, priority, argv, frames, chunk, tags, "
            "max_attempts, env, depends_on, fail_policy, created, updated, tasks_total) VALUES "
            "(4, 'old', 'queued', 50, '[\"x\"]', '', 1, '[]', 3, '{}', '[]', 'stop', 1.0, 2.0, 0)"
        )
    finally:
        db.close()

    s = Store(database_url, tmp_path)
    assert s.open() == migrations.latest_version()
    try:
        assert [(j.id, j.name, j.argv) for j in JobStore(s).load_jobs()] == [(4, "old", ["x"])]
        ds = DeviceStore(s)
        ds.save_user(user(1))
        ds.insert_readings([reading("t0", T0)])
        assert ds.load_users() == [user(1)]
        assert ds.max_ids() == {"user": 1, "token": 0, "keg": 0, "pour": 0}
    finally:
        s.close()


# -- users, tokens, taps, kegs -----------------------------------------------------------------


def test_empty_tables(devices: DeviceStore) -> None:
    assert devices.max_ids() == {"user": 0, "token": 0, "keg": 0, "pour": 0}
    assert devices.load_users() == []
    assert devices.load_tokens() == []
    assert devices.load_taps() == []
    assert devices.load_kegs() == devices.load_kegs(active_only=False) == []
    assert devices.query_pours() == []
    assert devices.pour_totals() == {"by_user": [], "by_keg": []}
    assert devices.query_readings() == devices.latest_readings() == []
    assert devices.prune_readings(T0) == 0


def test_round_trip_of_users_tokens_taps_and_kegs(devices: DeviceStore) -> None:
    plain = user(2)
    odd = user(1, "zoë", display_name='Zoë "Ψ" 🍺, \\N', password_hash=None, admin=True)
    odd.enabled, odd.created = False, 0.1 + 0.2
    devices.save_user(plain)
    devices.save_user(odd)
    assert devices.load_users() == [odd, plain]

    tokens = [token(3, "core.onewire", "00ff", username="zoë"), token(1), token(2, enabled=False)]
    for t in tokens:
        devices.save_token(t)
    assert devices.load_tokens() == sorted(tokens, key=lambda t: t.id)

    taps = [
        TapRecord("tap2", "keg1.flow1", 2.724, None, 10.0, [], T0),
        TapRecord("tap1 Ü", "keg1.flow0", 5.1, "keg1.relay0", 2.5, ["core.rfid", 'ç,"x"'], T0),
    ]
    for tap in taps:
        devices.save_tap(tap)
    assert devices.load_taps() == sorted(taps, key=lambda t: t.name)

    active, ended = keg(1, beverage="Bière ✓"), keg(2, "tap2", poured_ml=19_000.25, ended=T0 + 9)
    devices.save_keg(ended)
    devices.save_keg(active)
    assert devices.load_kegs() == [active]
    assert devices.load_kegs(active_only=False) == [active, ended]
    assert devices.max_ids() == {"user": 2, "token": 3, "keg": 2, "pour": 0}


def test_a_password_hash_is_replaced_alone(devices: DeviceStore) -> None:
    devices.save_user(user(1))
    devices.save_user(user(2))
    devices.update_password_hash(1, "$scrypt$ln=17,r=8,p=1$c2FsdA$aGFzaA")
    assert devices.load_users() == [
        user(1, password_hash="$scrypt$ln=17,r=8,p=1$c2FsdA$aGFzaA"),
        user(2),
    ]
    devices.update_password_hash(99, "$scrypt$x")  # no such user: nothing changes
    assert [u.password_hash for u in devices.load_users()][1] == user(2).password_hash


def test_saves_update_by_key(devices: DeviceStore) -> None:
    devices.save_user(user(1))
    devices.save_user(user(1, "renamed", password_hash=None, admin=True, enabled=False))
    assert devices.load_users() == [
        user(1, "renamed", password_hash=None, admin=True, enabled=False)
    ]
    devices.save_token(token(1))
    devices.save_token(token(1, "core.onewire", "beef", enabled=False))
    assert devices.load_tokens() == [token(1, "core.onewire", "beef", enabled=False)]
    tap = TapRecord("tap1", "keg1.flow0", 2.724, "keg1.relay0", 10.0, ["a"], T0)
    devices.save_tap(tap)
    changed = TapRecord("tap1", "keg2.flow3", 3.0, None, 4.0, [], T0 + 1)
    devices.save_tap(changed)
    assert devices.load_taps() == [changed]
    devices.save_keg(keg(1))
    devices.save_keg(keg(1, poured_ml=500.5, ended=T0 + 100))
    assert devices.load_kegs() == []
    assert devices.load_kegs(active_only=False) == [keg(1, poured_ml=500.5, ended=T0 + 100)]


def test_unique_username_and_reader_token(devices: DeviceStore) -> None:
    devices.save_user(user(1, "alice"))
    with pytest.raises(peewee.IntegrityError):
        devices.save_user(user(2, "alice"))
    devices.save_token(token(1, "core.rfid", "abcd"))
    with pytest.raises(peewee.IntegrityError):
        devices.save_token(token(2, "core.rfid", "abcd"))
    devices.save_token(token(3, "core.onewire", "abcd"))  # same token, other reader: fine
    assert [u.id for u in devices.load_users()] == [1]
    assert [t.id for t in devices.load_tokens()] == [1, 3]
    devices.delete_token(1)
    devices.delete_token(42)  # unknown: nothing to do
    devices.save_token(token(2, "core.rfid", "abcd"))  # free again
    assert [t.id for t in devices.load_tokens()] == [2, 3]


# -- pours -------------------------------------------------------------------------------------


def test_record_pour_writes_pour_and_keg(devices: DeviceStore) -> None:
    devices.save_keg(keg(1))
    first = pour(1, username=None, keg_id=1)
    devices.record_pour(first, keg(1, poured_ml=first.volume_ml))
    odd = pour(2, "tap ü", username="zoë ✓", keg_id=None, ticks=0, volume_ml=0.1 + 0.2)
    devices.record_pour(odd, None)
    assert devices.query_pours() == [odd, first]
    assert devices.load_kegs() == [keg(1, poured_ml=first.volume_ml)]
    assert devices.max_ids() == {"user": 0, "token": 0, "keg": 1, "pour": 2}


def test_record_pour_is_atomic(devices: DeviceStore) -> None:
    devices.save_keg(keg(1))
    devices.record_pour(pour(1), keg(1, poured_ml=301.0))
    with pytest.raises(peewee.IntegrityError):  # the pour id exists: the keg stays as it was
        devices.record_pour(pour(1), keg(1, poured_ml=999.0))
    with pytest.raises(peewee.IntegrityError):  # the keg breaks NOT NULL: no pour either
        devices.record_pour(pour(2), keg(1, tap=None, poured_ml=999.0))  # type: ignore[arg-type]
    assert devices.query_pours() == [pour(1)]
    assert devices.load_kegs() == [keg(1, poured_ml=301.0)]
    devices.record_pour(pour(2), keg(1, poured_ml=603.0))  # still usable after the failures
    assert [p.id for p in devices.query_pours()] == [2, 1]


def test_query_pours_filters_limit_and_order(devices: DeviceStore) -> None:
    # Ids deliberately not in end order: the order is newest end first.
    pours = [
        pour(1, "tap1", "alice", end=T0 + 50),
        pour(2, "tap1", None, end=T0 + 10),
        pour(3, "tap2", "alice", end=T0 + 30),
        pour(4, "tap2", "bob", end=T0 + 40),
        pour(5, "tap1", "bob", end=T0 + 20),
        pour(6, "tap2", None, end=T0 + 60),
    ]
    for p in pours:
        devices.record_pour(p, None)

    def ids(**kwargs: object) -> list[int]:
        return [p.id for p in devices.query_pours(**kwargs)]  # type: ignore[arg-type]

    assert ids() == [6, 1, 4, 3, 5, 2]
    assert ids(limit=2) == [6, 1]
    assert ids(limit=0) == []
    assert ids(tap="tap1") == [1, 5, 2]
    assert ids(username="alice") == [1, 3]
    assert ids(tap="tap2", username="alice") == [3]
    assert ids(guest_only=True) == [6, 2]
    assert ids(tap="tap1", guest_only=True, limit=5) == [2]
    assert ids(tap="nope") == ids(username="carol") == []
    assert devices.query_pours(tap="tap2", limit=1) == [pours[5]]
    with pytest.raises(ValueError):
        devices.query_pours(username="alice", guest_only=True)
    with pytest.raises(ValueError):
        devices.query_pours(limit=-1)


def test_pour_totals(devices: DeviceStore) -> None:
    for p in (
        pour(1, username="bob", keg_id=2, volume_ml=100.0),
        pour(2, username=None, keg_id=1, volume_ml=50.25),
        pour(3, username="alice", keg_id=1, volume_ml=200.0),
        pour(4, username="bob", keg_id=None, volume_ml=300.5),
        pour(5, username=None, keg_id=2, volume_ml=25.0),
    ):
        devices.record_pour(p, None)
    assert devices.pour_totals() == {
        "by_user": [
            {"username": "alice", "pours": 1, "volume_ml": 200.0},
            {"username": "bob", "pours": 2, "volume_ml": 400.5},
            {"username": None, "pours": 2, "volume_ml": 75.25},
        ],
        "by_keg": [
            {"keg_id": 1, "pours": 2, "volume_ml": 250.25},
            {"keg_id": 2, "pours": 2, "volume_ml": 125.0},
            {"keg_id": None, "pours": 1, "volume_ml": 300.5},
        ],
    }


# -- readings ----------------------------------------------------------------------------------


def test_readings_bulk_insert_and_query_windows(devices: DeviceStore) -> None:
    # 10,000 readings of 4 sensors, one per second, inserted out of time order.
    readings = [reading(f"t{i % 4}", T0 + i, value=i / 8) for i in range(10_000)]
    devices.insert_readings(readings[5000:])
    devices.insert_readings(readings[:5000])
    devices.insert_readings([])
    assert devices.query_readings(limit=20_000) == readings
    # Over the limit: the newest `limit`, still in ascending time.
    assert devices.query_readings(limit=10) == readings[-10:]
    assert devices.query_readings(limit=0) == []
    t1 = [r for r in readings if r.sensor == "t1"]
    assert devices.query_readings("t1", limit=20_000) == t1
    assert devices.query_readings("t1", limit=3) == t1[-3:]
    assert devices.query_readings("t9") == []
    # since inclusive, until exclusive.
    assert devices.query_readings(since=T0 + 9990) == readings[9990:]
    assert devices.query_readings(until=T0 + 5) == readings[:5]
    assert devices.query_readings(since=T0 + 100, until=T0 + 200, limit=30) == readings[170:200]
    assert devices.query_readings("t2", since=T0 + 100, until=T0 + 120) == [
        r for r in readings[100:120] if r.sensor == "t2"
    ]
    assert devices.query_readings(since=T0 + 10, until=T0 + 10) == []
    with pytest.raises(ValueError):
        devices.query_readings(limit=-1)


def test_readings_round_trip_and_ties(devices: DeviceStore) -> None:
    odd = [
        ReadingRecord("söil ü", "humidity", -0.0, "%", 0.1 + 0.2, 'agent "x", \\N'),
        ReadingRecord("", "", 1e-300, "", 0.5, ""),
        ReadingRecord("t", "temperature", 123456.789012345, "°C", 1e9 + 0.125, "keg1"),
    ]
    devices.insert_readings(odd)
    assert devices.query_readings() == sorted(odd, key=lambda r: r.time)
    # A sensor's name as a prefix of another's (or empty) selects that sensor alone.
    assert devices.query_readings("") == [odd[1]]
    assert devices.query_readings("s", since=0.0) == []
    # Equal times keep insertion order, and the limit keeps the last inserted ones.
    same = [reading("s", T0, value=float(i)) for i in range(5)]
    devices.insert_readings(same)
    assert devices.query_readings("s") == same
    assert devices.query_readings("s", limit=2) == same[-2:]
    latest = {r.sensor: r for r in devices.latest_readings()}
    assert latest == {r.sensor: r for r in [*odd, same[-1]]}


def test_latest_and_prune_readings(devices: DeviceStore) -> None:
    readings = [reading(f"s{i % 3}", T0 + i, value=float(i)) for i in range(30)]
    devices.insert_readings(readings[::-1])  # newest inserted first
    latest = devices.latest_readings()
    assert latest == [readings[27], readings[28], readings[29]]  # s0, s1, s2
    devices.insert_readings([reading("a", T0 - 1000), reading("s1", T0 + 1000, unit="F")])
    assert devices.latest_readings() == [
        reading("a", T0 - 1000),
        readings[27],
        reading("s1", T0 + 1000, unit="F"),
        readings[29],
    ]
    assert devices.prune_readings(T0 + 10) == 11  # "a" and the first ten
    assert devices.prune_readings(T0 + 10) == 0
    assert devices.query_readings(limit=100)[0] == readings[10]
    assert len(devices.query_readings(limit=100)) == 21
    assert devices.prune_readings(T0 + 10_000) == 21
    assert devices.latest_readings() == []


# -- reopen ------------------------------------------------------------------------------------


def test_data_survives_reopening(store: Store, database_url: str, tmp_path: Path) -> None:
    ds = DeviceStore(store)
    tap = TapRecord("tap1", "keg1.flow0", 2.724, "keg1.relay0", 10.0, ["core.rfid"], T0)
    ds.save_user(user(1, "alice"))
    ds.save_token(token(1, username="alice"))
    ds.save_tap(tap)
    ds.save_keg(keg(1))
    ds.record_pour(pour(1, keg_id=1), keg(1, poured_ml=301.0))
    ds.insert_readings([reading("t0", T0), reading("t0", T0 + 1)])
    store.close()
    again = Store(database_url, tmp_path)
    again.open()
    try:
        ds = DeviceStore(again)
        assert ds.load_users() == [user(1, "alice")]
        assert ds.load_tokens() == [token(1, username="alice")]
        assert ds.load_taps() == [tap]
        assert ds.load_kegs() == [keg(1, poured_ml=301.0)]
        assert ds.query_pours() == [pour(1, keg_id=1)]
        assert ds.query_readings() == [reading("t0", T0), reading("t0", T0 + 1)]
        assert ds.max_ids() == {"user": 1, "token": 1, "keg": 1, "pour": 1}
    finally:
        again.close()


# -- the kegerator: beverages, corrections, sensor places, alert rules (migration 12) ----------


def test_beverages_corrections_places_and_rules_round_trip(devices: DeviceStore) -> None:
    stout = keg(1, abv=4.2, style="Dry stout", ibu=45.0, srm=40.0, size="corny", image=None)
    devices.save_keg(stout)
    assert devices.load_kegs() == [stout]
    first, second = pour(1, keg_id=1), pour(2, keg_id=1)
    devices.record_pour(first, keg(1, poured_ml=first.volume_ml))
    devices.record_pour(second, None)
    canceled = dataclasses.replace(first, canceled=True)
    devices.correct_pour(canceled, [dataclasses.replace(stout, poured_ml=0.0)])
    spilled = dataclasses.replace(second, spill=True, username=None)
    devices.correct_pour(spilled, [])
    assert devices.query_pours() == [spilled]  # a canceled pour is not listed
    stored = devices.get_pour(1)
    assert stored is not None and bool(stored.canceled) and devices.get_pour(9) is None
    assert devices.pour_totals()["by_user"] == [
        {"username": None, "pours": 1, "volume_ml": spilled.volume_ml}
    ]
    assert devices.load_kegs()[0].poured_ml == 0.0
    devices.save_place(SensorPlaceRecord("fridge1", "tap1", "kegerator", T0))
    devices.save_place(SensorPlaceRecord("wort", None, "fermenter", T0))
    devices.delete_place("wort")
    assert devices.load_places() == [SensorPlaceRecord("fridge1", "tap1", "kegerator", T0)]
    assert devices.max_rule_id() == 0
    devices.save_rule(AlertRuleRecord(1, "above", "fridge1", 6.0, 300.0, T0))
    devices.save_rule(AlertRuleRecord(2, "silent", "brewpi", None, 600.0, T0))
    devices.delete_rule(1)
    assert devices.load_rules() == [AlertRuleRecord(2, "silent", "brewpi", None, 600.0, T0)]
    assert devices.max_rule_id() == 2
