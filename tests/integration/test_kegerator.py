"""The kegerator against a real master over TCP: a keg started by named size with its beverage,
a pour from a fake Kegboard agent announced as `pour` and `keg.low` notices, corrected over the
API and the `farmhand` command (audited, the stats following), and a sensor alert rule raised by
a real agent's readings (rules also added and listed with `farmhand alerts`). The logic's edge
cases are in tests/unit/test_kegerator.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_devices import ALICE_CARD, Board, wait_pours
from tests.support import MasterProcess, RpcClient, agent, farmhand

pytestmark = pytest.mark.timeout(60)


def notice(admin: RpcClient, name: str) -> dict[str, object]:
    event = admin.wait_event(lambda e: e["topic"] == "notices" and e["data"]["event"] == name)
    data: dict[str, object] = event["data"]["data"]
    return data


def test_a_keg_by_size_a_pour_its_notices_and_its_corrections(tmp_path: Path) -> None:
    hub = MasterProcess(tmp_path / "var")
    try:
        with RpcClient(hub.port) as admin:
            admin.call("taps.configure", tap="tap1", meter="keg1.flow0", idle_s=0.3)
            admin.call("users.create", username="alice")
            admin.call("users.create", username="bob")
            admin.call("tokens.assign", reader="core.rfid", token=ALICE_CARD, username="alice")
            keg = admin.call(
                "kegs.start", tap="tap1", beverage="Pale Ale", size="1 L", style="APA", srm=6
            )
            assert keg["volume_ml"] == 1000 and keg["srm_colour"] == "#d5bc26"
            admin.call("subscribe", topics=["notices"])
            board = Board(hub.port)
            board.meter(0)
            assert board.token(ALICE_CARD) == "alice"
            for ticks in (800, 1600, 2452):  # 900 ml at 2.724 ticks/ml: 10 % left
                board.meter(ticks)
            [pour] = wait_pours(admin, 1)
            assert notice(admin, "session.started")["session"]
            assert notice(admin, "pour")["pour"] == pour
            assert notice(admin, "keg.low")["tap"] == "tap1"
            board.close()

            admin.call("pours.update", id=pour["id"], username="bob")
            assert admin.call("stats.get")["volume_by_drinker"] == {"bob": pour["volume_ml"]}
            done = farmhand("call", "pours.cancel", json.dumps({"id": pour["id"]}), master=hub)
            assert done.returncode == 0, done.stderr
            assert admin.call("taps.list")["taps"][0]["keg"]["remaining_ml"] == 1000
            assert admin.call("stats.get")["total_pours"] == 0
            audited = [e["method"] for e in admin.call("audit.list")["entries"]]
            assert audited[:2] == ["pours.cancel", "pours.update"]
    finally:
        hub.stop()


def test_a_sensor_out_of_range_raises_an_alert_and_clears(tmp_path: Path) -> None:
    hub = MasterProcess(tmp_path / "var")
    try:
        with RpcClient(hub.port) as admin:
            rule = admin.call("alerts.create", kind="above", target="fridge1", value=6, minutes=0)
            admin.call("subscribe", topics=["notices"])
            with agent(hub.port, "fridge", role="hardware") as fridge:
                fridge.notify("reading", sensor="fridge1", kind="temperature", value=9, unit="C")
                assert notice(admin, "sensor.alert")["id"] == rule["id"]
                assert admin.call("alerts.list")["active"][0]["last_value"] == 9
                fridge.notify("reading", sensor="fridge1", kind="temperature", value=3, unit="C")
                assert notice(admin, "sensor.cleared")["reason"] == "back in range"
            assert admin.call("alerts.list")["active"] == []
            added = farmhand("alerts", "add", "silent", "fridge", "--minutes", "10", master=hub)
            assert added.returncode == 0 and "fridge not heard from for 10 min" in added.stdout
            listed = farmhand("alerts", master=hub)
            assert "fridge1 above 6 for 0 min" in listed.stdout and "2 rules" in listed.stdout
            assert farmhand("alerts", "add", "sideways", "x", master=hub).returncode == 2
    finally:
        hub.stop()
