"""The whole master in process (MasterKit): API methods called through the method table, console
commands through the console's command table, agents over FakePeers, the fake clock. Covers the
job methods end to end, the registry's verbs, the device hub and the Life of a Pour."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.errors import ErrorCode, RpcError
from tests.unit.farmkit import MasterKit

pytestmark = [pytest.mark.fast, pytest.mark.timeout(30)]


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[MasterKit]:
    master_kit = MasterKit(tmp_path)
    yield master_kit
    master_kit.close()


# -- jobs through the method table -------------------------------------------------------------
def test_a_job_runs_through_the_methods_a_worker_and_a_person_call(kit: MasterKit) -> None:
    worker, peer = kit.agent("worker", "w1", info={"slots": 1})
    submitted = kit.call("jobs.submit", name="shot", argv=["echo", "{frame}"], frames="1-2")
    assert submitted == {"job_id": 1, "tasks": 2}
    kit.dispatch()
    (order,) = peer.take()
    assert order["argv"] == ["echo", "1"]
    kit.call("task.started", worker, attempt=order["attempt"], pid=4)
    kit.call("task.progress", worker, attempt=order["attempt"], percent=50)
    assert kit.call("jobs.get", job_id=1)["tasks_by_status"]["running"] == 1
    assert kit.call("task.finished", worker, attempt=order["attempt"], exit_code=0) == {}
    kit.dispatch()
    (second,) = peer.take()
    assert kit.call("task.finished", worker, attempt=second["attempt"], exit_code=0) == {}
    view = kit.call("jobs.get", job_id=1)
    assert (view["status"], view["tasks_by_status"]["completed"]) == ("completed", 2)
    stale = pytest.raises(RpcError)
    with stale as refused:
        kit.call("task.finished", worker, attempt="1.9.000000", exit_code=0)
    assert refused.value.reason == "stale_attempt"


def test_job_actions_through_the_method_table(kit: MasterKit) -> None:
    kit.call("jobs.submit", name="a", argv=["true"], frames="1-2")
    assert kit.call("jobs.pause", job_id=1)["status"] == "paused"
    assert kit.call("jobs.resume", job_id=1)["status"] == "queued"
    assert kit.call("jobs.set_priority", job_id=1, priority=70)["priority"] == 70
    assert kit.call("jobs.cancel", job_id=1)["status"] == "canceled"
    assert kit.call("jobs.requeue", job_id=1)["status"] == "queued"
    with pytest.raises(RpcError) as refused:
        kit.call("tasks.requeue", task_id=1)
    assert refused.value.reason == "bad_task_state"
    with pytest.raises(RpcError) as missing:
        kit.call("jobs.get", job_id=99)
    assert (missing.value.code, missing.value.reason) == (ErrorCode.NOT_FOUND, "no_such_job")


def test_console_commands_render_the_methods_results(kit: MasterKit) -> None:
    reply = kit.console("submit shot frames=1-4 chunk=2 -- render {start} {end}")
    assert "job 1" in reply
    listing = kit.console("jobs")
    assert "shot" in listing and "0/2" in listing
    assert "paused" in kit.console("pause 1")
    assert "paused" in kit.console("jobs paused")
    assert kit.console("jobs completed") == "no jobs"
    assert kit.console("cancel 99").startswith("error")


# -- the registry's verbs ----------------------------------------------------------------------
def test_disable_enable_and_forget_through_the_console(kit: MasterKit) -> None:
    _, peer = kit.agent("worker", "w1")
    kit.call("jobs.submit", name="a", argv=["true"], frames="1")
    kit.console("disable w1")
    client = kit.services.registry.get("w1")
    assert client is not None and not client.enabled
    kit.dispatch()
    assert peer.take() == []  # a disabled worker gets nothing
    kit.console("enable w1")
    kit.dispatch()
    assert len(peer.take()) == 1
    with pytest.raises(RpcError) as online:
        kit.call("clients.forget", name="w1")
    assert online.value.reason == "client_online"
    kit.services.registry.disconnect(client, client.connection, kit.clock.wall(), "gone")
    assert kit.call("jobs.get", job_id=1)["tasks_by_status"]["queued"] == 1  # given back
    kit.call("clients.forget", name="w1")
    assert kit.services.registry.get("w1") is None


# -- the device hub and the Life of a Pour -----------------------------------------------------
def pour_setup(kit: MasterKit) -> None:
    kit.call("users.create", username="ann")
    kit.call("tokens.assign", reader="core.rfid", token="0a0b0c", username="ann")
    kit.call(
        "taps.configure", tap="left", meter="keg1.flow0", output="keg1.valve0", ticks_per_ml=2.0
    )
    kit.call("kegs.start", tap="left", beverage="pils", volume_ml=20_000)


def test_a_known_token_opens_the_valve_and_an_idle_flow_becomes_a_pour(kit: MasterKit) -> None:
    pour_setup(kit)
    board, peer = kit.agent("hardware", "keg1")
    answer = kit.call("token.update", board, reader="core.rfid", token="0A0B0C", present=True)
    assert answer == {"username": "ann"}
    assert peer.take("output.set") == [{"output": "valve0", "on": True}]
    kit.call("meter.update", board, meter="flow0", ticks=1000)  # the first total: a baseline
    kit.clock.advance(1.0)
    kit.call("meter.update", board, meter="flow0", ticks=1600)
    (tap,) = kit.call("taps.list")["taps"]
    assert tap["valve_open"] and tap["flow"]["username"] == "ann"
    kit.clock.advance(9.9)
    kit.services.devices.run_once(kit.clock.wall(), kit.clock.mono())
    assert kit.call("taps.list")["taps"][0]["flow"] is not None  # idle for 9.9 s: still going
    kit.clock.advance(0.2)
    kit.services.devices.run_once(kit.clock.wall(), kit.clock.mono())
    assert peer.take("output.set") == [{"output": "valve0", "on": False}]
    (pour,) = kit.call("pours.list")["pours"]
    assert (pour["tap"], pour["username"], pour["volume_ml"]) == ("left", "ann", 300.0)
    keg = kit.call("taps.list")["taps"][0]["keg"]
    assert keg["poured_ml"] == 300.0


def test_an_unknown_token_opens_nothing_and_is_listed_to_assign(kit: MasterKit) -> None:
    pour_setup(kit)
    board, peer = kit.agent("hardware", "keg1")
    answer = kit.call("token.update", board, reader="core.rfid", token="ffff", present=True)
    assert answer == {"username": None}
    assert peer.sent("output.set") == []
    unknown = kit.call("tokens.list")["unknown"]
    assert [(seen["reader"], seen["token"]) for seen in unknown] == [("core.rfid", "ffff")]


def test_an_authorisation_without_a_flow_lapses_and_closes_the_valve(kit: MasterKit) -> None:
    pour_setup(kit)
    board, peer = kit.agent("hardware", "keg1")
    kit.call("token.update", board, reader="core.rfid", token="0a0b0c", present=True)
    assert len(peer.take("output.set")) == 1
    kit.clock.advance(29.0)
    kit.services.devices.run_once(kit.clock.wall(), kit.clock.mono())
    assert peer.sent("output.set") == []
    kit.clock.advance(1.5)
    kit.services.devices.run_once(kit.clock.wall(), kit.clock.mono())
    assert peer.take("output.set") == [{"output": "valve0", "on": False}]
    assert kit.call("pours.list")["pours"] == []


def test_an_agent_coming_back_gets_its_open_valve_again(kit: MasterKit) -> None:
    pour_setup(kit)
    board, first = kit.agent("hardware", "keg1")
    kit.call("token.update", board, reader="core.rfid", token="0a0b0c", present=True)
    assert len(first.take("output.set")) == 1
    client = kit.services.registry.get("keg1")
    assert client is not None
    kit.services.registry.disconnect(client, client.connection, kit.clock.wall(), "cable")
    _, again = kit.agent("hardware", "keg1")
    assert again.take("output.set") == [{"output": "valve0", "on": True}]
