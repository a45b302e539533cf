"""The kegerator in process (the whole master, fake clock, real SQLite): beverages on kegs, pour
corrections with the stats following, keg and session events, sensor places and alert rules
with the time passed in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from farmhand.master.devices.beverages import KEG_SIZES_ML, keg_size, srm_colour
from farmhand.master.session import Session
from protocol.errors import RpcError
from tests.unit.farmkit import MasterKit

pytestmark = pytest.mark.timeout(30)

ALICE_CARD = "a11ce0001"
TICKS_PER_ML = 2.0


class Inbox:
    """A `notices` subscriber: the kegerator's named events, in order (a client going offline
    is the job farm's and the webhooks' concern, not these tests')."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def send_bytes(self, data: bytes) -> None:
        notice = orjson.loads(data)["params"]["data"]
        if notice["event"] != "client.offline":
            self.events.append((notice["event"], notice["data"]))

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


class Keg:
    """tap1 on keg1.flow0 (2 ticks per ml), alice and bob, the agent keg1 online."""

    def __init__(self, kit: MasterKit, **keg: Any) -> None:
        self.kit = kit
        kit.call("taps.configure", tap="tap1", meter="keg1.flow0", ticks_per_ml=2.0, idle_s=1)
        for name in ("alice", "bob"):
            kit.call("users.create", username=name)
        kit.call("tokens.assign", reader="core.rfid", token=ALICE_CARD, username="alice")
        self.keg = kit.call("kegs.start", tap="tap1", beverage="Pale Ale", **keg)
        self.agent, _ = kit.agent("hardware", "keg1")
        self.ticks = 0
        kit.call("meter.update", self.agent, meter="flow0", ticks=0)

    def pour(self, ml: float, card: str | None = ALICE_CARD) -> dict[str, Any]:
        if card is not None:
            self.kit.call("token.update", self.agent, reader="core.rfid", token=card, present=True)
        self.ticks += int(ml * TICKS_PER_ML)
        self.kit.call("meter.update", self.agent, meter="flow0", ticks=self.ticks)
        self.kit.clock.advance(2)
        self.tick()
        pour: dict[str, Any] = self.kit.call("pours.list", limit=1)["pours"][0]
        return pour

    def tick(self) -> None:
        self.kit.services.devices.run_once(self.kit.clock.wall(), self.kit.clock.mono())

    def remaining(self) -> float:
        [tap] = self.kit.call("taps.list")["taps"]
        return float(tap["keg"]["remaining_ml"])


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[MasterKit]:
    kit = MasterKit(tmp_path)
    yield kit
    kit.close()


@pytest.fixture
def inbox(kit: MasterKit) -> Inbox:
    inbox = Inbox()
    kit.services.events.subscribe(inbox, ["notices"])
    return inbox


def code_of(call: Any) -> int:
    with pytest.raises(RpcError) as failure:
        call()
    return int(failure.value.code)


# -- beverages --------------------------------------------------------------------------------


def test_named_keg_sizes_are_kegbots_and_volumes_take_units() -> None:
    assert KEG_SIZES_ML["half"] == 58673.9 and KEG_SIZES_ML["quarter"] == 29336.9
    assert KEG_SIZES_ML["sixth"] == 19570.6 and KEG_SIZES_ML["corny"] == 18927.1
    assert keg_size("Euro-50") == ("euro-50", 50000.0)
    assert keg_size("19.5 L") == ("", 19500.0) and keg_size("500ml") == ("", 500.0)
    assert (
        srm_colour(1) == "#f3f993" and srm_colour(60) == srm_colour(30) and srm_colour(None) is None
    )


def test_kegs_start_stores_the_beverage_and_a_restart_keeps_it(tmp_path: Path) -> None:
    kit = MasterKit(tmp_path)
    try:
        kit.call("taps.configure", tap="tap1", meter="keg1.flow0")
        keg = kit.call(
            "kegs.start", tap="tap1", beverage="Stout", size="corny", abv=5.8, style="Dry stout",
            ibu=40, srm=38, image="https://example.invalid/stout.png",
        )  # fmt: skip
        assert keg["volume_ml"] == 18927.1 and keg["size"] == "corny"
        assert (keg["abv"], keg["style"], keg["ibu"], keg["srm"]) == (5.8, "Dry stout", 40, 38)
        assert keg["srm_colour"] == "#050b0a"
        assert code_of(lambda: kit.call("kegs.start", tap="tap1", beverage="x", size="pint"))
        kit.call("kegs.end", tap="tap1")
        for bad in ({"size": "keg"}, {"size": "0 L"}, {}, {"volume_ml": 1000, "image": "ftp://x"}):
            assert (
                code_of(lambda bad=bad: kit.call("kegs.start", tap="tap1", beverage="x", **bad))
                == -32602
            )
        kit.call("kegs.start", tap="tap1", beverage="Lager", size="19.5 L", srm=3)
        assert "Lager" in kit.console("kegs") and "Dry stout" in kit.console("kegs")
        reply = kit.console("kegs start tap2 half Big Lager abv=4.5")
        assert "no tap" in reply  # the method's error, shown
    finally:
        kit.close()
    kit = MasterKit(tmp_path)
    try:
        kegs = kit.call("kegs.list")["kegs"]
        assert [k["beverage"] for k in kegs] == ["Lager", "Stout"]
        assert kegs[0]["volume_ml"] == 19500 and kegs[0]["srm_colour"] == "#f6f513"
        assert kegs[1]["style"] == "Dry stout" and kegs[1]["image"].endswith("stout.png")
    finally:
        kit.close()


# -- corrections ------------------------------------------------------------------------------


def test_cancel_puts_the_volume_back_and_takes_the_pour_out_of_the_stats(kit: MasterKit) -> None:
    keg = Keg(kit, volume_ml=10_000)
    first = keg.pour(300)
    second = keg.pour(200)
    assert keg.remaining() == 9500
    canceled = kit.call("pours.cancel", id=first["id"])
    assert canceled["canceled"] is True
    assert keg.remaining() == 9800
    assert [p["id"] for p in kit.call("pours.list")["pours"]] == [second["id"]]
    stats = kit.call("stats.get")
    assert (stats["total_pours"], stats["total_volume_ml"], stats["largest_pour_ml"]) == (
        1,
        200,
        200,
    )
    assert kit.call("stats.get", keg=keg.keg["id"])["total_volume_ml"] == 200
    assert kit.call("sessions.list")["sessions"][0]["volume_ml"] == 200
    assert code_of(lambda: kit.call("pours.cancel", id=first["id"])) == -32009
    assert code_of(lambda: kit.call("pours.cancel", id=999)) == -32004
    methods = [e["method"] for e in kit.call("audit.list")["entries"]]
    assert "pours.cancel" in methods


def test_reassign_resize_and_spill_move_the_stats_and_the_keg(kit: MasterKit) -> None:
    keg = Keg(kit, volume_ml=10_000)
    pour = keg.pour(400)
    kit.call("pours.update", id=pour["id"], username="bob")
    assert kit.call("stats.get")["volume_by_drinker"] == {"bob": 400}
    assert kit.call("stats.get", username="alice")["total_pours"] == 0
    assert kit.call("stats.get", username="bob")["sessions"] == 1
    kit.call("pours.update", id=pour["id"], volume_ml=250)
    assert keg.remaining() == 9750
    assert kit.call("stats.get", username="bob")["largest_pour_ml"] == 250
    spilled = kit.call("pours.update", id=pour["id"], spill=True)
    assert spilled["spill"] is True and keg.remaining() == 9750  # a spill still left the keg
    assert kit.call("stats.get")["total_pours"] == 0
    assert kit.call("sessions.list")["sessions"] == []
    kit.call("pours.update", id=pour["id"], spill=False, username="guest")
    assert kit.call("stats.get")["volume_by_drinker"] == {"guest": 250}
    assert code_of(lambda: kit.call("pours.update", id=pour["id"], username="nobody")) == -32004
    assert code_of(lambda: kit.call("pours.update", id=pour["id"])) == -32602
    assert code_of(lambda: kit.call("pours.update", id=pour["id"], volume_ml=1)) == -32602
    assert f"pour {pour['id']}: 250 ml, alice" in kit.console(f"correct {pour['id']} user=alice")
    assert "canceled: 250 ml back" in kit.console(f"correct {pour['id']} cancel")
    assert keg.remaining() == 10_000
    assert "usage: correct" in kit.console("correct x cancel")


def test_corrections_survive_a_restart(tmp_path: Path) -> None:
    kit = MasterKit(tmp_path)
    try:
        keg = Keg(kit, volume_ml=10_000)
        first, second = keg.pour(300), keg.pour(200)
        kit.call("pours.cancel", id=first["id"])
        kit.call("pours.update", id=second["id"], username="bob", volume_ml=150)
        before = kit.call("stats.get")
    finally:
        kit.close()
    kit = MasterKit(tmp_path)
    try:
        assert kit.call("stats.get") == before
        assert before["volume_by_drinker"] == {"bob": 150}
        [tap] = kit.call("taps.list")["taps"]
        assert tap["keg"]["remaining_ml"] == 9850
    finally:
        kit.close()


# -- events -----------------------------------------------------------------------------------


def test_pour_keg_low_keg_ended_and_session_started_events(kit: MasterKit, inbox: Inbox) -> None:
    keg = Keg(kit, volume_ml=1000)
    keg.pour(500)
    assert inbox.names() == ["session.started", "pour"]
    _, data = inbox.events[1]
    assert data["pour"]["volume_ml"] == 500 and data["tap"]["name"] == "tap1"
    keg.pour(360)  # 140 ml left: under 15 %
    assert inbox.names()[2:] == ["pour", "keg.low"]
    keg.pour(50)  # still low: no second keg.low
    assert inbox.names()[4:] == ["pour"]
    keg.pour(100)  # empty
    assert inbox.names()[5:] == ["pour", "keg.ended"]
    assert inbox.events[-1][1]["reason"] == "empty"
    kit.clock.advance(91 * 60)
    keg.pour(20)
    assert inbox.names()[7:] == ["session.started", "pour"]
    kit.call("kegs.end", tap="tap1")
    assert inbox.events[-1][0] == "keg.ended" and inbox.events[-1][1]["reason"] == "ended"


def test_a_correction_that_empties_the_keg_further_can_make_it_low(
    kit: MasterKit, inbox: Inbox
) -> None:
    keg = Keg(kit, volume_ml=1000)
    pour = keg.pour(500)
    kit.call("pours.update", id=pour["id"], volume_ml=900)
    assert inbox.names()[-1] == "keg.low"


# -- sensors and alerts -----------------------------------------------------------------------


def reading(kit: MasterKit, agent: Session, sensor: str, value: float) -> None:
    kit.call("reading", agent, sensor=sensor, kind="temperature", value=value, unit="C")


def test_an_alert_is_raised_after_n_minutes_out_of_range_and_cleared_back_in(
    kit: MasterKit, inbox: Inbox
) -> None:
    agent, _ = kit.agent("hardware", "fridge")
    rule = kit.call("alerts.create", kind="above", target="fridge1", value=6.0, minutes=5)
    assert rule["summary"] == "fridge1 above 6 for 5 min"
    devices = kit.services.devices
    reading(kit, agent, "fridge1", 7.5)
    kit.clock.advance(4 * 60)
    devices.run_once(kit.clock.wall(), kit.clock.mono())
    assert inbox.names() == []
    reading(kit, agent, "fridge1", 5.0)  # back in range: the 5 minutes start again
    reading(kit, agent, "fridge1", 8.0)
    kit.clock.advance(4 * 60 + 59)
    devices.run_once(kit.clock.wall(), kit.clock.mono())
    assert inbox.names() == []
    kit.clock.advance(1)
    devices.run_once(kit.clock.wall(), kit.clock.mono())
    assert inbox.names() == ["sensor.alert"]
    assert inbox.events[0][1]["target"] == "fridge1" and inbox.events[0][1]["last_value"] == 8.0
    devices.run_once(kit.clock.wall(), kit.clock.mono())
    reading(kit, agent, "fridge1", 9.0)
    assert inbox.names() == ["sensor.alert"]  # once
    assert [a["id"] for a in kit.call("alerts.list")["active"]] == [rule["id"]]
    assert "RAISED" in kit.console("alerts")
    reading(kit, agent, "fridge1", 4.0)
    assert inbox.names() == ["sensor.alert", "sensor.cleared"]
    assert kit.call("alerts.list")["active"] == []


def test_a_below_rule_with_zero_minutes_raises_at_the_reading(kit: MasterKit, inbox: Inbox) -> None:
    agent, _ = kit.agent("hardware", "ferm")
    kit.call("alerts.create", kind="below", target="wort", value=18, minutes=0)
    reading(kit, agent, "wort", 17.9)
    assert inbox.names() == ["sensor.alert"]


def test_an_agent_not_heard_from_raises_and_its_return_clears(kit: MasterKit, inbox: Inbox) -> None:
    agent, _ = kit.agent("hardware", "brewpi")
    kit.call("alerts.create", kind="silent", target="brewpi", minutes=10)
    kit.call("alerts.create", kind="silent", target="cellar", minutes=10)  # a sensor, never heard
    devices = kit.services.devices
    client = kit.services.registry.get("brewpi")
    assert client is not None
    kit.services.registry.disconnect(client, client.connection, kit.clock.wall(), "lost")
    kit.clock.advance(9 * 60)
    devices.run_once(kit.clock.wall(), kit.clock.mono())
    assert inbox.names() == []
    kit.clock.advance(60)
    devices.run_once(kit.clock.wall(), kit.clock.mono())
    assert sorted(data["target"] for _, data in inbox.events) == ["brewpi", "cellar"]
    kit.agent("hardware", "brewpi")
    reading(kit, agent, "cellar", 12.0)  # an old session still reports here: it is heard
    devices.run_once(kit.clock.wall(), kit.clock.mono())
    cleared = [data["target"] for name, data in inbox.events if name == "sensor.cleared"]
    assert sorted(cleared) == ["brewpi", "cellar"]


def test_rules_and_places_are_stored_and_shown_on_the_taps(tmp_path: Path) -> None:
    kit = MasterKit(tmp_path)
    try:
        kit.call("taps.configure", tap="tap1", meter="keg1.flow0")
        assert "alert rule 1: fridge1 above 4 for 10 min" in kit.console(
            "alerts add above fridge1 4 10"
        )
        assert "alert rule 2: keg1 not heard" in kit.console("alerts add silent keg1 15")
        assert "usage: alerts" in kit.console("alerts add sideways x 1 2")
        assert code_of(lambda: kit.call("alerts.create", kind="above", target="x", minutes=1))
        assert "sensor fridge1: tap tap1, fridge kegerator" in kit.console(
            "sensors place fridge1 tap=tap1 fridge=kegerator"
        )
        assert code_of(lambda: kit.call("sensors.place", sensor="s", tap="nope")) == -32004
        kit.console("alerts delete 2")
    finally:
        kit.close()
    kit = MasterKit(tmp_path)
    try:
        rules = kit.call("alerts.list")["rules"]
        assert [(r["id"], r["kind"], r["value"], r["minutes"]) for r in rules] == [
            (1, "above", 4, 10)
        ]
        taps = kit.call("taps.list")
        assert [(s["sensor"], s["tap"]) for s in taps["sensors"]] == [("fridge1", "tap1")]
        assert taps["fridges"] == ["kegerator"]
        assert "kegerator" in kit.console("sensors")
        assert kit.call("alerts.create", kind="silent", target="t", minutes=1)["id"] == 2  # max + 1
    finally:
        kit.close()
