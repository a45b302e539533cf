"""The device hub against a real master (docs/devices.md, docs/events.md).

Fake agents talk over real sockets: `keg1` (role `hardware`) owns meter `flow0` and valve
`relay0` and answers the master's `output.set` orders with `{}`; `door1` (role `auth`) is a
separate reader. Taps idle out after 0.5 to 2 s so that flows end within a test; tests wait by
polling, never by fixed sleeps.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import ConsoleClient, MasterProcess, RpcClient, agent, wait_for

pytestmark = pytest.mark.timeout(30)

ALICE_CARD = "a11ce0001"
ALICE_BUTTON = "0000000012345678"


class Board:
    """A fake hardware (or auth) agent: reports meters and tokens, obeys `output.set`."""

    def __init__(self, port: int, name: str = "keg1", role: str = "hardware") -> None:
        self.name = name
        self.rpc = agent(port, name, role=role)
        self.orders: list[dict[str, Any]] = []  # every order answered, oldest first
        self._taken = 0

    # -- reports -------------------------------------------------------------------------------
    def meter(self, ticks: int, meter: str = "flow0") -> None:
        """`meter.update` as the notification agents send; a ping orders it before what follows."""
        self.rpc.notify("meter.update", meter=meter, ticks=ticks)
        self.sync()

    def token(self, token: str, present: bool = True, reader: str = "core.rfid") -> Any:
        result = self.rpc.call("token.update", reader=reader, token=token, present=present)
        self._answer()
        return result["username"]

    def sync(self) -> None:
        """Return once the master has handled everything sent before (one connection is
        served in order), answering the orders that came meanwhile."""
        assert self.rpc.call("ping") == "pong"
        self._answer()

    # -- orders from the master ----------------------------------------------------------------
    def _answer(self) -> None:
        while self.rpc.requests:
            order = self.rpc.requests.pop(0)
            reply = {"jsonrpc": "2.0", "id": order["id"], "result": {}}
            self.rpc.send_raw(orjson.dumps(reply) + b"\n")
            self.orders.append({"method": order["method"], **order["params"]})

    def _read(self, timeout: float) -> None:
        self.rpc.sock.settimeout(max(0.01, timeout))
        try:
            message = self.rpc.read_message()
        except TimeoutError:
            return
        finally:
            self.rpc.sock.settimeout(10.0)
        if "method" in message:
            (self.rpc.requests if "id" in message else self.rpc.events).append(message)

    def next_order(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next order not yet looked at, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while True:
            self._answer()
            if self._taken < len(self.orders):
                self._taken += 1
                return self.orders[self._taken - 1]
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no order from the master within {timeout}s")
            self._read(deadline - time.monotonic())

    def no_new_orders(self) -> bool:
        self.sync()
        return self._taken == len(self.orders)

    def close(self) -> None:
        self.rpc.close()


def valve(on: bool, output: str = "relay0") -> dict[str, Any]:
    return {"method": "output.set", "output": output, "on": on}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[MasterProcess]:
    """A master at the default 5 s heartbeat: the fake agents, which never heartbeat, stay
    online for the whole test."""
    process = MasterProcess(tmp_path / "var")
    yield process
    process.stop()


@pytest.fixture
def admin(hub: MasterProcess) -> Iterator[RpcClient]:
    with RpcClient(hub.port) as client:
        yield client


@pytest.fixture
def keg1(hub: MasterProcess) -> Iterator[Board]:
    board = Board(hub.port)
    yield board
    board.close()


def setup_tap(admin: RpcClient, **changes: Any) -> dict[str, Any]:
    """tap1 on keg1.flow0 with valve keg1.relay0, a 19 l keg, and alice with an RFID card."""
    params = {"tap": "tap1", "meter": "keg1.flow0", "output": "keg1.relay0", "idle_s": 1}
    tap: dict[str, Any] = admin.call("taps.configure", **{**params, **changes})
    admin.call("users.create", username="alice", display_name="Alice")
    admin.call("tokens.assign", reader="core.rfid", token=ALICE_CARD, username="alice")
    admin.call("kegs.start", tap="tap1", beverage="Pale Ale", volume_ml=19000)
    return tap


def tap1(admin: RpcClient) -> dict[str, Any]:
    taps: list[dict[str, Any]] = admin.call("taps.list")["taps"]
    return next(tap for tap in taps if tap["name"] == "tap1")


def pours(admin: RpcClient, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = admin.call("pours.list", **params)["pours"]
    return found


def wait_pours(admin: RpcClient, count: int, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = wait_for(
        lambda: len(listed := pours(admin, **params)) >= count and listed,
        timeout=5,
        what=f"{count} pour(s)",
    )
    return found


def flow_ended(admin: RpcClient) -> bool:
    return tap1(admin)["flow"] is None


def error_of(client: RpcClient, method: str, **params: Any) -> dict[str, Any]:
    reply = client.request(method, **params)
    assert "error" in reply, reply
    error: dict[str, Any] = reply["error"]
    return error


# -- event shapes: every `pours` event carries the views taps.list and pours.list return -------


def test_pour_events_carry_the_tap_and_pour_views(admin: RpcClient, keg1: Board) -> None:
    """docs/events.md: a flow event is `{flow, tap}` and a pour event `{pour, tap}`, where `tap`
    is the taps.list row and `pour` the pours.list row (the flow event once sent the tap's name
    alone)."""
    admin.call("subscribe", topics=["pours"])
    setup_tap(admin, idle_s=0.5)
    keg1.meter(0)
    keg1.meter(100)
    flow = admin.wait_event(lambda e: e["topic"] == "pours" and "flow" in e["data"])["data"]
    assert set(flow) == {"flow", "tap"}
    assert flow["tap"] == tap1(admin)
    assert flow["flow"] == tap1(admin)["flow"]
    done = admin.wait_event(lambda e: e["topic"] == "pours" and "pour" in e["data"])["data"]
    assert set(done) == {"pour", "tap"}
    assert done["tap"] == tap1(admin)
    assert [done["pour"]] == wait_pours(admin, 1)


# -- meters (Kegbot's baseline rules) ----------------------------------------------------------


def flow_ticks(admin: RpcClient) -> int | None:
    flow = tap1(admin)["flow"]
    return None if flow is None else flow["ticks"]


def test_the_first_reading_after_connecting_is_a_baseline(admin: RpcClient, keg1: Board) -> None:
    admin.call("taps.configure", tap="tap1", meter="keg1.flow0", idle_s=30)
    keg1.meter(5000)
    assert flow_ticks(admin) is None  # a baseline pours nothing
    keg1.meter(5001)
    keg1.meter(5100)
    assert flow_ticks(admin) == 100
    keg1.meter(6100)  # +1000: still beer
    assert flow_ticks(admin) == 1100


def test_a_board_reset_or_a_big_jump_only_moves_the_baseline(admin: RpcClient, keg1: Board) -> None:
    admin.call("taps.configure", tap="tap1", meter="keg1.flow0", idle_s=30)
    keg1.meter(5000)
    keg1.meter(5100)
    keg1.meter(3)  # the board reset: counts from zero again
    assert flow_ticks(admin) == 100
    keg1.meter(13)
    assert flow_ticks(admin) == 110
    keg1.meter(13 + 1001)  # implausible jump
    assert flow_ticks(admin) == 110
    keg1.meter(13 + 1001 + 5)
    assert flow_ticks(admin) == 115


def test_after_a_reconnect_the_next_reading_is_a_new_baseline(
    hub: MasterProcess, admin: RpcClient, keg1: Board
) -> None:
    admin.call("taps.configure", tap="tap1", meter="keg1.flow0", idle_s=30)
    keg1.meter(100)
    keg1.meter(150)
    assert flow_ticks(admin) == 50
    keg1.close()
    again = Board(hub.port, "keg1")
    try:
        again.meter(400)  # +250 since the last reading, but the first after connecting
        assert flow_ticks(admin) == 50
        again.meter(410)
        assert flow_ticks(admin) == 60
    finally:
        again.close()


def test_meters_of_other_agents_do_not_pour_on_the_tap(
    hub: MasterProcess, admin: RpcClient, keg1: Board
) -> None:
    admin.call("taps.configure", tap="tap1", meter="keg1.flow0", idle_s=30)
    with agent(hub.port, "keg2", role="hardware") as keg2:
        for ticks in (0, 500):
            keg2.notify("meter.update", meter="flow0", ticks=ticks)
        keg1.meter(0)
        keg1.meter(500)  # keg1.flow1 belongs to no tap
        keg1.meter(0, meter="flow1")
        keg1.meter(300, meter="flow1")
        assert keg2.call("ping") == "pong"
    assert flow_ticks(admin) == 500


# -- the Life of a Pour ------------------------------------------------------------------------


def test_life_of_a_pour(hub: MasterProcess, admin: RpcClient, keg1: Board) -> None:
    admin.call("subscribe", topics=["pours"])
    tap = setup_tap(admin)
    assert tap["ticks_per_ml"] == 2.724  # the default
    assert tap["valve_open"] is False
    keg1.meter(0)  # baseline

    # alice swipes her card: the master opens keg1's valve
    assert keg1.token(ALICE_CARD) == "alice"
    keg1.token(ALICE_CARD, present=False)  # RFID: removed at once, the session goes on
    assert keg1.next_order() == valve(True)
    state = tap1(admin)
    assert state["valve_open"] is True and state["user"] == "alice"

    # the beer runs: 545 ticks / 2.724 ticks per ml ≈ 200.1 ml
    keg1.meter(545)
    flow = admin.wait_event(lambda e: e["topic"] == "pours" and e["data"].get("flow"))["data"]
    assert flow["flow"]["username"] == "alice" and flow["flow"]["ticks"] == 545
    assert tap1(admin)["flow"]["volume_ml"] == 200.1

    # one idle second later the valve closes and the pour is recorded
    assert keg1.next_order(timeout=5) == valve(False)
    event = admin.wait_event(lambda e: e["topic"] == "pours" and "pour" in e["data"])["data"]
    assert event["pour"]["username"] == "alice"
    assert event["pour"]["ticks"] == 545
    assert event["pour"]["volume_ml"] == 200.1

    [pour] = pours(admin)
    assert {k: pour[k] for k in ("tap", "username", "ticks", "volume_ml")} == {
        "tap": "tap1",
        "username": "alice",
        "ticks": 545,
        "volume_ml": 200.1,
    }
    assert pour["start"] <= pour["end"]
    assert pours(admin, username="alice") == [pour]
    assert pours(admin, tap="tap1") == [pour]
    assert pours(admin, username="guest") == []

    [keg] = admin.call("kegs.list")["kegs"]
    assert keg["remaining_ml"] == pytest.approx(19000 - 200.1)
    state = tap1(admin)
    assert state["keg"]["remaining_ml"] == pytest.approx(19000 - 200.1)
    assert state["flow"] is None and state["valve_open"] is False and state["user"] is None

    with ConsoleClient(hub.port) as console:
        text = console.command("pours")
        assert "tap1" in text and "alice" in text and "200 ml" in text and "545" in text
        assert "1 pour" in text


def test_pours_accumulate_on_the_keg(admin: RpcClient, keg1: Board) -> None:
    setup_tap(admin, output=None)
    keg1.meter(0)
    for ticks in (545, 1090):
        keg1.meter(ticks)
        wait_for(lambda: flow_ended(admin), timeout=5, what="the flow to end")
    assert [p["volume_ml"] for p in pours(admin)] == [200.1, 200.1]
    [keg] = admin.call("kegs.list")["kegs"]
    assert keg["remaining_ml"] == pytest.approx(19000 - 400.2)


def test_an_anonymous_flow_is_a_guest_pour(admin: RpcClient, keg1: Board) -> None:
    setup_tap(admin)
    keg1.meter(1000)
    keg1.meter(1300)
    assert tap1(admin)["flow"]["username"] is None
    [pour] = wait_pours(admin, 1)
    assert pour["username"] is None and pour["ticks"] == 300
    assert pours(admin, username="guest") == [pour]
    assert pours(admin, username="alice") == []
    assert keg1.no_new_orders()  # nobody authenticated: the valve was never ordered open


def test_an_anonymous_flow_is_taken_over_by_who_authenticates(
    admin: RpcClient, keg1: Board
) -> None:
    setup_tap(admin, idle_s=2)
    keg1.meter(0)
    keg1.meter(300)
    assert tap1(admin)["flow"]["username"] is None
    assert keg1.token(ALICE_CARD) == "alice"
    assert keg1.next_order() == valve(True)
    assert tap1(admin)["flow"]["username"] == "alice"
    keg1.meter(600)
    assert keg1.next_order(timeout=6) == valve(False)
    [pour] = wait_pours(admin, 1)
    assert pour["username"] == "alice" and pour["ticks"] == 600
    assert pours(admin, username="guest") == []


def test_a_flow_under_10_ml_is_not_recorded(admin: RpcClient, keg1: Board) -> None:
    setup_tap(admin, idle_s=0.5)
    keg1.meter(0)
    keg1.token(ALICE_CARD)
    assert keg1.next_order() == valve(True)
    keg1.meter(27)  # 27 / 2.724 = 9.9 ml
    assert tap1(admin)["flow"]["ticks"] == 27
    assert keg1.next_order() == valve(False)
    wait_for(lambda: flow_ended(admin), timeout=5, what="the flow to end")
    assert pours(admin) == []
    assert admin.call("kegs.list")["kegs"][0]["remaining_ml"] == 19000


def test_a_flow_of_10_ml_is_recorded(admin: RpcClient, keg1: Board) -> None:
    setup_tap(admin, idle_s=0.5)
    keg1.meter(0)
    keg1.meter(28)  # 10.3 ml
    [pour] = wait_pours(admin, 1)
    assert pour["volume_ml"] == 10.3


def test_lifting_a_captive_ibutton_ends_the_flow_at_once(admin: RpcClient, keg1: Board) -> None:
    setup_tap(admin, idle_s=60)  # an idle end would take a minute
    admin.call("tokens.assign", reader="core.onewire", token=ALICE_BUTTON, username="alice")
    keg1.meter(0)
    assert keg1.token(ALICE_BUTTON, reader="core.onewire") == "alice"
    assert keg1.next_order() == valve(True)
    keg1.meter(545)
    assert pours(admin) == []
    keg1.token(ALICE_BUTTON, present=False, reader="core.onewire")
    assert keg1.next_order(timeout=1) == valve(False)
    [pour] = pours(admin)  # recorded by the time token.update was answered
    assert pour["username"] == "alice" and pour["ticks"] == 545
    assert tap1(admin)["flow"] is None


def test_lifting_an_ibutton_before_pouring_closes_the_valve(admin: RpcClient, keg1: Board) -> None:
    setup_tap(admin, idle_s=60)
    admin.call("tokens.assign", reader="core.onewire", token=ALICE_BUTTON, username="alice")
    keg1.token(ALICE_BUTTON, reader="core.onewire")
    assert keg1.next_order() == valve(True)
    keg1.token(ALICE_BUTTON, present=False, reader="core.onewire")
    assert keg1.next_order(timeout=1) == valve(False)
    assert tap1(admin)["user"] is None and pours(admin) == []


def test_a_pour_belongs_to_the_ibutton_still_on_the_reader(admin: RpcClient, keg1: Board) -> None:
    """docs/devices.md: a pour belongs to the user whose token is present when it ends. An iButton
    that stays on the reader after one flow idled out still owns the next flow."""
    setup_tap(admin, output=None, idle_s=0.5)
    admin.call("tokens.assign", reader="core.onewire", token=ALICE_BUTTON, username="alice")
    keg1.meter(0)
    keg1.token(ALICE_BUTTON, reader="core.onewire")
    keg1.meter(300)
    wait_pours(admin, 1)
    assert tap1(admin)["user"] == "alice"  # still sitting on the reader
    keg1.meter(600)
    second, first = wait_pours(admin, 2)
    assert (first["username"], second["username"]) == ("alice", "alice")
    keg1.token(ALICE_BUTTON, present=False, reader="core.onewire")
    assert tap1(admin)["user"] is None
    keg1.meter(900)  # lifted: the next flow is the guest's
    assert wait_pours(admin, 3)[0]["username"] is None


def test_after_an_ibutton_flow_idles_out_the_valve_closes(admin: RpcClient, keg1: Board) -> None:
    setup_tap(admin, idle_s=0.5)
    admin.call("tokens.assign", reader="core.onewire", token=ALICE_BUTTON, username="alice")
    keg1.meter(0)
    keg1.token(ALICE_BUTTON, reader="core.onewire")
    assert keg1.next_order() == valve(True)
    keg1.meter(300)
    assert keg1.next_order(timeout=5) == valve(False)
    [pour] = wait_pours(admin, 1)
    assert pour["username"] == "alice"
    keg1.token(ALICE_BUTTON, present=False, reader="core.onewire")
    assert keg1.no_new_orders()  # closed already
    assert tap1(admin)["user"] is None
    keg1.token(ALICE_BUTTON, reader="core.onewire")  # put back: open again
    assert keg1.next_order() == valve(True)


def test_an_unknown_token_opens_nothing_until_assigned(
    hub: MasterProcess, admin: RpcClient, keg1: Board
) -> None:
    setup_tap(admin)
    assert keg1.token("cafe0042") is None
    assert keg1.token("cafe0042") is None
    assert keg1.no_new_orders()
    assert tap1(admin)["valve_open"] is False

    [seen] = admin.call("tokens.list")["unknown"]
    assert seen["reader"] == "core.rfid" and seen["token"] == "cafe0042"
    assert seen["agent"] == "keg1" and seen["count"] == 2
    with ConsoleClient(hub.port) as console:
        text = console.command("tokens")
        assert "unknown tokens seen" in text
        assert "cafe0042" in text and "keg1" in text

    admin.call("users.create", username="bob")
    admin.call("tokens.assign", reader="core.rfid", token="cafe0042", username="bob")
    assert admin.call("tokens.list")["unknown"] == []
    assert keg1.token("cafe0042") == "bob"
    assert keg1.next_order() == valve(True)
    assert tap1(admin)["user"] == "bob"


def test_a_revoked_token_opens_nothing(admin: RpcClient, keg1: Board) -> None:
    setup_tap(admin)
    admin.call("tokens.revoke", reader="core.rfid", token=ALICE_CARD)
    assert keg1.token(ALICE_CARD) is None
    assert keg1.no_new_orders()


def test_a_token_at_a_separate_auth_agent_opens_the_valve(
    hub: MasterProcess, admin: RpcClient, keg1: Board
) -> None:
    tap = setup_tap(admin, auth_agents=["door1"])
    assert tap["auth_agents"] == ["door1"]
    door1 = Board(hub.port, "door1", role="auth")
    try:
        keg1.meter(0)
        assert keg1.token(ALICE_CARD) == "alice"  # keg1's own reader is not the tap's
        assert keg1.no_new_orders()
        assert door1.token(ALICE_CARD) == "alice"
        assert keg1.next_order() == valve(True)  # the valve is keg1's
        assert door1.no_new_orders()
        keg1.meter(545)
        assert keg1.next_order(timeout=5) == valve(False)
        [pour] = wait_pours(admin, 1)
        assert pour["username"] == "alice" and pour["volume_ml"] == 200.1
    finally:
        door1.close()


def test_a_valve_left_open_is_reopened_when_its_agent_reconnects(
    hub: MasterProcess, admin: RpcClient, keg1: Board
) -> None:
    setup_tap(admin, idle_s=5)
    keg1.token(ALICE_CARD)
    assert keg1.next_order() == valve(True)
    keg1.close()
    again = Board(hub.port, "keg1")
    try:
        assert again.next_order() == valve(True)
    finally:
        again.close()


# -- readings ----------------------------------------------------------------------------------


def test_readings_are_stored_and_queried(hub: MasterProcess, admin: RpcClient) -> None:
    admin.call("subscribe", topics=["readings"])
    with agent(hub.port, "cellar", role="hardware") as cellar:
        for value in (4.5, 4.75, 5.0):
            cellar.notify("reading", sensor="fermenter", kind="temperature", value=value, unit="C")
        cellar.notify("reading", sensor="cellar.rh", kind="humidity", value=61.0, unit="%")
        assert cellar.call("ping") == "pong"

    event = admin.wait_event(lambda e: e["topic"] == "readings")["data"]
    assert event["sensor"] == "fermenter" and event["value"] == 4.5 and event["agent"] == "cellar"

    result = admin.call("readings.query", sensor="fermenter")
    assert [r["value"] for r in result["readings"]] == [4.5, 4.75, 5.0]
    assert all(r["kind"] == "temperature" and r["unit"] == "C" for r in result["readings"])
    assert [(r["sensor"], r["value"]) for r in result["latest"]] == [("fermenter", 5.0)]

    everything = admin.call("readings.query")
    assert len(everything["readings"]) == 4
    assert {r["sensor"]: r["value"] for r in everything["latest"]} == {
        "fermenter": 5.0,
        "cellar.rh": 61.0,
    }

    newest_two = admin.call("readings.query", sensor="fermenter", limit=2)["readings"]
    assert [r["value"] for r in newest_two] == [4.75, 5.0]

    times = [r["time"] for r in result["readings"]]
    since = admin.call("readings.query", sensor="fermenter", since=times[1])["readings"]
    assert [r["time"] for r in since] == [t for t in times if t >= times[1]]
    assert admin.call("readings.query", since="2999-01-01T00:00:00Z")["readings"] == []
    assert error_of(admin, "readings.query", since="yesterday")["code"] == -32602

    with ConsoleClient(hub.port) as console:
        latest = console.command("readings")
        assert "fermenter" in latest and "5 C" in latest and "cellar.rh" in latest
        assert "2 sensors" in latest
        one = console.command("readings fermenter")
        assert "4.5 C" in one and "4.75 C" in one and "5 C" in one


def test_an_implausible_reading_is_refused_and_not_stored(
    hub: MasterProcess, admin: RpcClient
) -> None:
    with agent(hub.port, "cellar", role="hardware") as cellar:
        error = error_of(
            cellar, "reading", sensor="fermenter", kind="temperature", value=4000, unit="C"
        )
        assert error["code"] == -32602
        assert error["data"]["reason"] == "implausible_reading"
        # as the notification agents send: refused without a reply
        cellar.notify("reading", sensor="fermenter", kind="temperature", value=4000.0, unit="C")
        cellar.notify("reading", sensor="fermenter", kind="temperature", value=6.0, unit="C")
        assert cellar.call("ping") == "pong"
    result = admin.call("readings.query", sensor="fermenter")
    assert [r["value"] for r in result["readings"]] == [6.0]
    assert [r["value"] for r in result["latest"]] == [6.0]


# -- device states and captured events ---------------------------------------------------------


def test_device_status_shows_in_devices_list(hub: MasterProcess, admin: RpcClient) -> None:
    with agent(hub.port, "keg1", role="hardware") as board:
        board.notify("device.status", device="/dev/ttyUSB0", online=True, info={"fw": 3})
        assert board.call("ping") == "pong"
        [device] = admin.call("devices.list")["devices"]
        assert device["agent"] == "keg1" and device["device"] == "/dev/ttyUSB0"
        assert device["online"] is True and device["info"] == {"fw": 3}
        board.call("device.status", device="/dev/ttyUSB0", online=False)
        [device] = admin.call("devices.list")["devices"]
        assert device["online"] is False


def test_devices_go_offline_with_their_agent(hub: MasterProcess, admin: RpcClient) -> None:
    with agent(hub.port, "keg1", role="hardware") as board:
        board.call("device.status", device="/dev/ttyUSB0", online=True)
    wait_for(
        lambda: admin.call("devices.list")["devices"][0]["online"] is False,
        timeout=5,
        what="the device to go offline with keg1",
    )


def test_reported_events_are_kept_and_published(hub: MasterProcess, admin: RpcClient) -> None:
    admin.call("subscribe", topics=["events"])
    with agent(hub.port, "logtail", role="hardware") as tail:
        tail.notify("event.report", source="/var/log/x.log", text="door opened", fields={"n": 1})
        assert tail.call("event.report", text="door closed") == {}
    event = admin.wait_event(lambda e: e["topic"] == "events")["data"]
    assert event["agent"] == "logtail" and event["text"] == "door opened"
    assert event["source"] == "/var/log/x.log" and event["fields"] == {"n": 1}
    recent = admin.call("events.recent")["events"]
    assert [e["text"] for e in recent] == ["door opened", "door closed"]
    assert [e["text"] for e in admin.call("events.recent", limit=1)["events"]] == ["door closed"]


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"meter": "flow0"},  # no agent
        {"meter": "keg1."},
        {"meter": ".flow0"},
        {"meter": "keg1.flow0", "output": "relay0"},
        {"meter": "keg1.flow0", "ticks_per_ml": 0},
        {"meter": "keg1.flow0", "idle_s": -1},
        {"meter": "keg1.flow0", "surprise": 1},
        {},
    ],
)
def test_taps_configure_refuses_bad_params(admin: RpcClient, params: dict[str, Any]) -> None:
    error = error_of(admin, "taps.configure", tap="tap1", **params)
    assert error["code"] == -32602, error
    assert admin.call("taps.list")["taps"] == []
    assert admin.call("ping") == "pong"


def test_one_meter_cannot_serve_two_taps(admin: RpcClient) -> None:
    admin.call("taps.configure", tap="tap1", meter="keg1.flow0")
    error = error_of(admin, "taps.configure", tap="tap2", meter="keg1.flow0")
    assert error["code"] == -32009
    assert [t["name"] for t in admin.call("taps.list")["taps"]] == ["tap1"]


def test_reconfiguring_a_tap_keeps_what_is_not_given(admin: RpcClient) -> None:
    admin.call("taps.configure", tap="tap1", meter="keg1.flow0", output="keg1.relay0", idle_s=3)
    tap = admin.call("taps.configure", tap="tap1", ticks_per_ml=5.0)
    assert tap["meter"] == "keg1.flow0" and tap["output"] == "keg1.relay0"
    assert tap["idle_s"] == 3 and tap["ticks_per_ml"] == 5.0


def test_kegs_start_and_end_check_the_tap(admin: RpcClient) -> None:
    admin.call("taps.configure", tap="tap1", meter="keg1.flow0")
    assert error_of(admin, "kegs.end", tap="tap1")["code"] == -32009
    keg = admin.call("kegs.start", tap="tap1", beverage="Stout", volume_ml=19000)
    assert keg["remaining_ml"] == 19000 and keg["ended"] is None
    assert error_of(admin, "kegs.start", tap="tap1", beverage="IPA", volume_ml=1)["code"] == -32009
    assert error_of(admin, "kegs.start", tap="nope", beverage="IPA", volume_ml=1)["code"] == -32004
    ended = admin.call("kegs.end", tap="tap1")
    assert ended["id"] == keg["id"] and ended["ended"] is not None
    assert error_of(admin, "kegs.end", tap="tap1")["code"] == -32009
    assert admin.call("kegs.start", tap="tap1", beverage="IPA", volume_ml=1000)["id"] != keg["id"]
    assert [k["beverage"] for k in admin.call("kegs.list")["kegs"]] == ["IPA", "Stout"]
    assert [k["beverage"] for k in admin.call("kegs.list", active=True)["kegs"]] == ["IPA"]


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("meter.update", {"meter": "flow0", "ticks": 1}),
        ("token.update", {"reader": "core.rfid", "token": "ab", "present": True}),
        ("reading", {"sensor": "t", "kind": "temperature", "value": 1.0, "unit": "C"}),
        ("device.status", {"device": "x", "online": True}),
    ],
)
def test_device_reports_need_a_hardware_or_auth_agent(
    hub: MasterProcess, method: str, params: dict[str, Any]
) -> None:
    with agent(hub.port, "w1", role="worker") as worker:
        error = error_of(worker, method, **params)
        assert error["code"] == -32009
        assert worker.call("ping") == "pong"
    with RpcClient(hub.port) as anonymous:  # no hello at all
        assert error_of(anonymous, method, **params)["code"] == -32009
        assert anonymous.call("ping") == "pong"


@pytest.mark.parametrize(
    "params",
    [
        {"meter": "flow0", "ticks": -1},
        {"meter": "flow0", "ticks": "12"},
        {"meter": "flow0"},
        {"ticks": 1},
    ],
)
def test_meter_update_refuses_bad_params(keg1: Board, params: dict[str, Any]) -> None:
    assert error_of(keg1.rpc, "meter.update", **params)["code"] == -32602
    keg1.sync()


def test_token_update_refuses_a_token_that_is_not_hex(keg1: Board) -> None:
    error = error_of(keg1.rpc, "token.update", reader="core.rfid", token="xyz!", present=True)
    assert error["code"] == -32602
    keg1.sync()


# -- persistence -------------------------------------------------------------------------------


def test_everything_survives_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    first = MasterProcess(data_dir)
    try:
        with RpcClient(first.port) as admin:
            setup_tap(admin, auth_agents=["door1", "keg1"])
            admin.call("users.create", username="bob", password="hunter2hunter2", admin=True)
            admin.call("tokens.assign", reader="core.onewire", token=ALICE_BUTTON, username="bob")
            board = Board(first.port)
            try:
                board.meter(0)
                board.token(ALICE_CARD)
                assert board.next_order() == valve(True)
                board.meter(545)
                board.rpc.notify(
                    "reading", sensor="fermenter", kind="temperature", value=4.5, unit="C"
                )
                board.sync()
                assert board.next_order(timeout=5) == valve(False)
            finally:
                board.close()
            [before_pour] = wait_pours(admin, 1)
            before_users = admin.call("users.list")["users"]
            before_tokens = admin.call("tokens.list")["tokens"]
            before_taps = admin.call("taps.list")["taps"]
            before_kegs = admin.call("kegs.list")["kegs"]
    finally:
        assert first.stop() == 0

    second = MasterProcess(data_dir)
    try:
        with RpcClient(second.port) as admin:
            assert admin.call("users.list")["users"] == before_users
            assert [u["username"] for u in before_users] == ["alice", "bob"]
            assert admin.call("tokens.list")["tokens"] == before_tokens
            assert len(before_tokens) == 2
            assert admin.call("taps.list")["taps"] == before_taps
            assert before_taps[0]["auth_agents"] == ["door1", "keg1"]
            assert admin.call("kegs.list")["kegs"] == before_kegs
            assert before_kegs[0]["remaining_ml"] == pytest.approx(19000 - 200.1)
            assert admin.call("pours.list")["pours"] == [before_pour]
            result = admin.call("readings.query", sensor="fermenter")
            assert [r["value"] for r in result["readings"]] == [4.5]
            assert [r["value"] for r in result["latest"]] == [4.5]
            assert admin.call("users.authenticate", username="bob", password="hunter2hunter2")

            # and the hub works on: new ids do not collide with the stored ones
            board = Board(second.port)
            try:
                board.meter(0)
                board.token(ALICE_CARD)
                assert board.next_order() == valve(True)
                board.meter(300)
                assert board.next_order(timeout=5) == valve(False)
            finally:
                board.close()
            newest, oldest = wait_pours(admin, 2)
            assert oldest == before_pour and newest["id"] > before_pour["id"]
            [keg] = admin.call("kegs.list")["kegs"]
            assert keg["remaining_ml"] == pytest.approx(19000 - 200.1 - 110.1)
    finally:
        assert second.stop() == 0

    with sqlite3.connect(next(data_dir.glob("*.db"))) as db:
        assert db.execute("SELECT count(*) FROM pour").fetchone() == (2,)
