"""The runtime client registry and the heartbeat reaper, driven by a fake clock: no sockets,
no sleeps, no database (dirty tracking is checked directly, without the saver)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from farmhand.master.clock import FakeClock
from farmhand.master.events import EventBus
from farmhand.master.reaper import HeartbeatReaper
from farmhand.master.registry import ClientRegistry, RuntimeClient
from models.store import ClientRecord
from protocol.errors import ErrorCode, RpcError
from protocol.selector import parse_selector

pytestmark = pytest.mark.fast

TIMEOUT_S = 1.5


class FakeConnection:
    """Stands in for a peer's connection: remembers why it was closed."""

    def __init__(self, label: str = "conn") -> None:
        self.label = label
        self.closed_because: str | None = None

    def close(self, reason: str) -> None:
        self.closed_because = reason


class Subscriber:
    """An EventBus subscriber that decodes what it is sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send_bytes(self, data: bytes) -> None:
        message = orjson.loads(data)
        assert message["method"] == "event"
        self.events.append(message["params"])

    def changes(self) -> list[tuple[str, str]]:
        return [(e["data"]["change"], e["data"]["client"]["name"]) for e in self.events]


def record(client_id: int, name: str, enabled: bool = True, role: str = "worker") -> ClientRecord:
    return ClientRecord(
        id=client_id,
        name=name,
        role=role,
        host="farm-1",
        enabled=enabled,
        tags=["old"],
        slots=1,
        first_seen=1_600_000_000.0,
        last_seen=1_600_000_100.0,
        info={},
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def watcher() -> Subscriber:
    return Subscriber()


@pytest.fixture
def registry(watcher: Subscriber) -> ClientRegistry:
    events = EventBus()
    events.subscribe(watcher, ["clients"])
    return ClientRegistry(events)


def connect(
    registry: ClientRegistry,
    clock: FakeClock,
    name: str,
    connection: Any = None,
    role: str = "worker",
    **info: Any,
) -> tuple[RuntimeClient, Any]:
    return registry.connect(
        name=name,
        role=role,
        host="farm-2",
        info=info,
        connection=connection if connection is not None else FakeConnection(name),
        now=clock.wall(),
        now_mono=clock.mono(),
    )


def select(registry: ClientRegistry, text: str) -> list[str]:
    return sorted(client.name for client in registry.select(parse_selector(text)))


# -- connect -----------------------------------------------------------------------------------


def test_a_new_name_creates_an_enabled_online_client(
    registry: ClientRegistry, clock: FakeClock, watcher: Subscriber
) -> None:
    client, replaced = connect(registry, clock, "w1", tags=["gpu", "blender"], slots=4)
    assert replaced is None
    assert client.id == 1
    assert client.enabled is True
    assert client.online is True
    assert client.status == "idle"
    assert client.tags == ["gpu", "blender"]
    assert client.slots == 4
    assert client.host == "farm-2"
    assert client.first_seen == client.last_seen == clock.wall()
    assert registry.get("w1") is client
    assert len(registry) == 1
    assert watcher.changes() == [("created", "w1"), ("online", "w1")]


def test_tags_may_come_as_a_comma_string_and_bad_slots_fall_back_to_one(
    registry: ClientRegistry, clock: FakeClock
) -> None:
    client, _ = connect(registry, clock, "w1", tags=" a, b ,,", slots=True)
    assert client.tags == ["a", "b"]
    assert client.slots == 1
    client, _ = connect(registry, clock, "w2", tags=[1, "x", ""], slots="2")
    assert client.tags == ["x"]
    assert client.slots == 1


def test_loaded_clients_are_offline_and_new_ids_follow_them(
    registry: ClientRegistry, clock: FakeClock
) -> None:
    registry.load([record(7, "old-a"), record(3, "old-b", enabled=False)])
    assert len(registry) == 2
    assert all(not client.online for client in registry.clients())
    assert registry.take_dirty() == []
    client, _ = connect(registry, clock, "fresh")
    assert client.id == 8


def test_a_known_name_keeps_its_id_and_enabled_flag(
    registry: ClientRegistry, clock: FakeClock, watcher: Subscriber
) -> None:
    registry.load([record(5, "w1", enabled=False)])
    clock.advance(60)
    client, replaced = connect(registry, clock, "w1", tags=["new"], slots=2)
    assert replaced is None
    assert (client.id, client.enabled, client.online) == (5, False, True)
    assert client.tags == ["new"]
    assert client.first_seen == 1_600_000_000.0
    assert client.last_seen == clock.wall()
    assert watcher.changes() == [("online", "w1")]


def test_a_second_connection_replaces_the_first(
    registry: ClientRegistry, clock: FakeClock, watcher: Subscriber
) -> None:
    first, second = FakeConnection("first"), FakeConnection("second")
    client, _ = connect(registry, clock, "w1", first)
    registry.set_running(client, ["a1"])
    again, replaced = connect(registry, clock, "w1", second)
    assert again is client
    assert replaced is first
    assert client.connection is second
    assert client.running == ()
    # The old connection ending later must not take the client offline.
    assert registry.disconnect(client, first, clock.wall(), "old one closed") is False
    assert client.online is True
    assert ("offline", "w1") not in watcher.changes()


# -- disconnect, running -----------------------------------------------------------------------


def test_disconnect_takes_the_client_offline_once(
    registry: ClientRegistry, clock: FakeClock, watcher: Subscriber
) -> None:
    connection = FakeConnection()
    client, _ = connect(registry, clock, "w1", connection)
    registry.set_running(client, ["a1"])
    clock.advance(5)
    assert registry.disconnect(client, connection, clock.wall(), "bye") is True
    assert (client.online, client.status, client.running) == (False, "offline", ())
    assert client.connection is None
    assert client.last_seen == clock.wall()
    assert registry.disconnect(client, connection, clock.wall(), "bye") is False
    offline = [e["data"] for e in watcher.events if e["data"]["change"] == "offline"]
    assert len(offline) == 1
    assert offline[0]["reason"] == "bye"
    assert offline[0]["client"]["online"] is False


def test_running_attempts_make_a_client_busy(registry: ClientRegistry, clock: FakeClock) -> None:
    client, _ = connect(registry, clock, "w1")
    registry.set_running(client, ["a1", "a2"])
    assert client.status == "busy"
    assert client.view()["running"] == ["a1", "a2"]
    registry.set_running(client, [])
    assert client.status == "idle"


def test_view_has_the_fields_of_clients_list(registry: ClientRegistry, clock: FakeClock) -> None:
    client, _ = connect(registry, clock, "w1", tags=["t"], slots=3)
    view = client.view()
    assert {
        "name",
        "role",
        "host",
        "enabled",
        "online",
        "status",
        "last_seen",
        "tags",
        "slots",
        "running",
    } <= set(view)
    assert view["last_seen"].startswith("2023-11-14T22:13:20")


def test_a_clients_row_follows_every_verb_that_changes_it(
    registry: ClientRegistry, clock: FakeClock
) -> None:
    """clients.list keeps each client's row built; every change must show in the next view,
    exactly as a row built from scratch (a fresh RuntimeClient of the same state) would."""
    from protocol.schedule import parse_schedule

    def fresh(client: RuntimeClient) -> dict[str, Any]:
        twin = RuntimeClient(client.record())
        for field in ("online", "running", "stopping", "sleep", "host", "role", "slots"):
            setattr(twin, field, getattr(client, field))
        return twin.view(clock.wall())

    client, _ = connect(registry, clock, "w1", tags=["gpu"], slots=2)
    seen = [client.view(clock.wall())]
    steps = [
        lambda: registry.set_running(client, ["1.1.abc"]),
        lambda: registry.heard_from(client, clock.wall() + 7.25, clock.mono()),
        lambda: registry.set_enabled(parse_selector("w1"), False),
        lambda: registry.set_schedule(parse_selector("w1"), parse_schedule("mon-sun 00:00-23:59")),
        lambda: registry.begin_stop(client, "restart", "idle"),
        lambda: registry.set_running(client, []),
        lambda: registry.disconnect(client, client.connection, clock.wall() + 9, "test"),
        lambda: connect(registry, clock, "w1", tags=["cpu"], slots=4),
    ]
    for step in steps:
        step()
        view = client.view(clock.wall())
        assert view == fresh(client), step
        assert view != seen[-1]
        seen.append(view)
    statuses = [view["status"] for view in seen]
    assert statuses == ["idle"] + ["busy"] * 5 + ["idle", "offline", "idle"]
    assert (seen[-1]["tags"], seen[-1]["slots"], seen[-1]["stopping"]) == (["cpu"], 4, None)


# -- select, enable, disable -------------------------------------------------------------------


@pytest.fixture
def farm(registry: ClientRegistry, clock: FakeClock) -> ClientRegistry:
    connect(registry, clock, "render-01", tags=["gpu"])
    connect(registry, clock, "render-02", tags=["cpu"])
    connect(registry, clock, "keg1", role="hardware")
    gone, _ = connect(registry, clock, "render-03", tags=["gpu"])
    registry.disconnect(gone, gone.connection, clock.wall(), "test")
    return registry


def test_select(farm: ClientRegistry) -> None:
    assert select(farm, "") == []
    assert select(farm, "all") == ["keg1", "render-01", "render-02", "render-03"]
    assert select(farm, "role=worker tag=gpu") == ["render-01", "render-03"]
    assert select(farm, "offline") == ["render-03"]
    assert select(farm, "render-0[13] online") == ["render-01"]


def test_enable_and_disable_report_matched_and_changed(
    farm: ClientRegistry, watcher: Subscriber
) -> None:
    watcher.events.clear()
    farm.take_dirty()
    matched, changed = farm.set_enabled(parse_selector("tag=gpu"), False)
    assert (sorted(matched), sorted(changed)) == (
        ["render-01", "render-03"],
        ["render-01", "render-03"],
    )
    matched, changed = farm.set_enabled(parse_selector("role=worker"), False)
    assert (sorted(matched), changed) == (["render-01", "render-02", "render-03"], ["render-02"])
    assert sorted(r.name for r in farm.take_dirty()) == ["render-01", "render-02", "render-03"]
    assert farm.set_enabled(parse_selector(""), True) == ([], [])
    assert sorted(watcher.changes()) == [
        ("disabled", "render-01"),
        ("disabled", "render-02"),
        ("disabled", "render-03"),
    ]


# -- forget --------------------------------------------------------------------------------------


def test_forget(farm: ClientRegistry, watcher: Subscriber) -> None:
    with pytest.raises(RpcError) as online:
        farm.forget("render-01")
    assert online.value.code == ErrorCode.CONFLICT
    with pytest.raises(RpcError) as unknown:
        farm.forget("ghost")
    assert unknown.value.code == ErrorCode.NOT_FOUND
    forgotten = farm.forget("render-03")
    assert forgotten.name == "render-03"
    assert farm.get("render-03") is None
    assert "render-03" not in [r.name for r in farm.take_dirty()]
    assert watcher.changes()[-1] == ("forgotten", "render-03")


# -- dirty tracking (what the write-behind saver takes) ------------------------------------------


def test_changes_mark_clients_dirty_once(registry: ClientRegistry, clock: FakeClock) -> None:
    client, _ = connect(registry, clock, "w1")
    dirty = registry.take_dirty()
    assert [(r.id, r.name, r.enabled) for r in dirty] == [(1, "w1", True)]
    assert registry.take_dirty() == []
    # Heartbeats touch memory only: nothing to save.
    clock.advance(1)
    registry.heard_from(client, clock.wall(), clock.mono())
    registry.set_running(client, ["a1"])
    assert registry.take_dirty() == []
    registry.set_enabled(parse_selector("w1"), False)
    assert [(r.name, r.enabled) for r in registry.take_dirty()] == [("w1", False)]


def test_a_failed_save_is_retried_unless_the_client_is_gone(
    registry: ClientRegistry, clock: FakeClock
) -> None:
    connect(registry, clock, "w1")
    w2, _ = connect(registry, clock, "w2")
    records = registry.take_dirty()
    registry.disconnect(w2, w2.connection, clock.wall(), "test")
    registry.forget("w2")
    registry.mark_dirty(records)
    assert [r.name for r in registry.take_dirty()] == ["w1"]


def test_all_records_reflect_the_runtime_state(registry: ClientRegistry, clock: FakeClock) -> None:
    registry.load([record(1, "a")])
    connect(registry, clock, "a", tags=["x"])
    (saved,) = registry.all_records()
    assert (saved.id, saved.name, saved.tags, saved.host) == (1, "a", ["x"], "farm-2")


def test_no_events_are_built_without_subscribers(clock: FakeClock) -> None:
    registry = ClientRegistry(EventBus())
    client, _ = connect(registry, clock, "w1")
    assert registry.disconnect(client, client.connection, clock.wall(), "quiet") is True


# -- the heartbeat reaper ------------------------------------------------------------------------


@pytest.fixture
def reaper(registry: ClientRegistry, clock: FakeClock) -> HeartbeatReaper:
    # These tests sweep once a second: that is the reaper's interval (a sweep much later than
    # its interval means the master stalled, which tests/unit/test_reaper_stall.py covers).
    return HeartbeatReaper(
        registry, timeout_s=TIMEOUT_S, interval_s=1.0, mono=clock.mono, wall=clock.wall
    )


def sweep(reaper: HeartbeatReaper, clock: FakeClock) -> list[str]:
    return reaper.run_once(clock.mono(), clock.wall())


def test_a_client_silent_past_the_timeout_goes_offline_and_is_disconnected(
    registry: ClientRegistry, clock: FakeClock, reaper: HeartbeatReaper, watcher: Subscriber
) -> None:
    connection = FakeConnection()
    client, _ = connect(registry, clock, "w1", connection)
    clock.advance(TIMEOUT_S)
    assert sweep(reaper, clock) == []
    assert client.online
    clock.advance(0.1)
    assert sweep(reaper, clock) == ["w1"]
    assert not client.online
    assert connection.closed_because is not None
    assert "heartbeat" in connection.closed_because
    assert watcher.events[-1]["data"]["change"] == "offline"
    assert "heartbeat" in watcher.events[-1]["data"]["reason"]
    assert sweep(reaper, clock) == []


def test_hearing_from_a_client_keeps_it_online(
    registry: ClientRegistry, clock: FakeClock, reaper: HeartbeatReaper
) -> None:
    connection = FakeConnection()
    client, _ = connect(registry, clock, "w1", connection)
    for _ in range(10):
        clock.advance(1.0)
        registry.heard_from(client, clock.wall(), clock.mono())
        assert sweep(reaper, clock) == []
    assert client.online
    assert client.last_seen == clock.wall()
    assert connection.closed_because is None


def test_the_reaper_takes_only_the_silent_ones(
    registry: ClientRegistry, clock: FakeClock, reaper: HeartbeatReaper
) -> None:
    quiet, _ = connect(registry, clock, "quiet")
    clock.advance(1.0)
    lively, _ = connect(registry, clock, "lively")
    gone, _ = connect(registry, clock, "gone")
    registry.disconnect(gone, gone.connection, clock.wall(), "test")
    clock.advance(1.0)
    assert sweep(reaper, clock) == ["quiet"]
    assert (quiet.online, lively.online) == (False, True)
    clock.advance(1.0)
    assert sweep(reaper, clock) == ["lively"]
