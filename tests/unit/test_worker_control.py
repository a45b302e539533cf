"""Worker control in process: the sleep-schedule grammar, the dispatcher skipping sleeping and
stopping workers (fake clock, no waiting), stop now/idle on the master's side, the node's answer
to the stop and restart exit codes, bulk forget, host facts, and the API and console commands."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from gevent.event import Event

from farmhand.agent.exits import EXIT_RESTART, EXIT_STOP
from farmhand.agent.hostinfo import host_info, read_meminfo
from farmhand.master.clock import FakeClock
from farmhand.node.states import Action, Lifecycle, Policy, State
from farmhand.worker.service import WorkerService
from protocol.errors import ErrorCode, RpcError
from protocol.schedule import ScheduleError, parse_schedule
from protocol.selector import parse_selector
from tests.unit.farmkit import FarmKit, MasterKit, peer_of

pytestmark = [pytest.mark.fast, pytest.mark.timeout(30)]

MON, TUE, FRI, SAT, SUN = 0, 1, 4, 5, 6


def local(day: int, hh: int, mm: int = 0) -> float:
    """The wall time of a local weekday and time in the week of Monday 2026-11-30."""
    return time.mktime((2026, 11, 30 + day, hh, mm, 0, 0, 0, -1))


# -- the schedule grammar ---------------------------------------------------------------------
def test_weekday_office_hours() -> None:
    schedule = parse_schedule("Mon-Fri 09:00-19:00")
    assert schedule.text == "mon-fri 09:00-19:00"
    assert schedule.asleep(MON, 9 * 60)
    assert schedule.asleep(FRI, 19 * 60 - 1)
    assert not schedule.asleep(FRI, 19 * 60)
    assert not schedule.asleep(MON, 8 * 60 + 59)
    assert not schedule.asleep(SAT, 12 * 60)


def test_overnight_and_several_windows_and_wrapping_days() -> None:
    schedule = parse_schedule("fri-mon 22:00-06:00, wed, 12:00-13:00")
    assert schedule.text == "fri-mon 22:00-06:00, wed, 12:00-13:00"
    assert schedule.asleep(FRI, 23 * 60)
    assert schedule.asleep(SAT, 5 * 60 + 59)  # Friday's night runs into Saturday
    assert not schedule.asleep(SAT, 6 * 60)
    assert schedule.asleep(TUE, 3 * 60)  # Monday's night runs into Tuesday
    assert not schedule.asleep(TUE, 22 * 60 + 30)
    assert schedule.asleep(SUN, 23 * 60 + 59)
    assert schedule.asleep(MON, 0)  # Sunday's night wraps past the end of the week
    assert all(schedule.asleep(2, minute) for minute in (0, 600, 1439))  # all Wednesday
    assert schedule.asleep(TUE, 12 * 60 + 30) and not schedule.asleep(TUE, 13 * 60)


def test_a_window_to_midnight() -> None:
    schedule = parse_schedule("sun 18:00-24:00")
    assert schedule.asleep(SUN, 1439) and not schedule.asleep(MON, 0)
    assert parse_schedule("mon-sun").text == "mon-sun"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty schedule"),
        ("mon-fry 09:00-19:00", "unknown day 'fry'"),
        ("mon 25:00-26:00", "25:00 is not a time"),
        ("mon 09:60-10:00", "09:60 is not a time"),
        ("mon 09:00-09:00", "starts and ends at the same time"),
        ("mon 24:00-02:00", "cannot start at 24:00"),
        ("mon,, tue", "empty window between commas"),
        ("mon 9-17", "expected DAYS, HH:MM-HH:MM or both"),
        ("x" * 1001, "at most 1000 characters"),
    ],
)
def test_bad_schedules_say_why(text: str, says: str) -> None:
    with pytest.raises(ScheduleError, match=says):
        parse_schedule(text)


# -- the dispatcher ---------------------------------------------------------------------------
@pytest.fixture
def kit(tmp_path: Path) -> Iterator[FarmKit]:
    farm_kit = FarmKit(tmp_path, FakeClock(wall=local(MON, 10)))
    yield farm_kit
    farm_kit.close()


def test_a_sleeping_worker_gets_no_task_until_its_window_ends(kit: FarmKit) -> None:
    sleeper = kit.worker("desk")
    kit.registry.set_schedule(parse_selector("desk"), parse_schedule("mon-fri 09:00-19:00"))
    kit.submit(frames="1")
    assert kit.orders(sleeper) == []
    assert sleeper.asleep(kit.clock.wall())
    kit.clock.advance(9 * 3600)  # Monday 19:00: the window has ended
    assert not sleeper.asleep(kit.clock.wall())
    (order,) = kit.orders(sleeper)
    assert order["frame_start"] == 1


def test_a_sleeping_worker_leaves_the_task_to_an_awake_one(kit: FarmKit) -> None:
    sleeper = kit.worker("desk")
    awake = kit.worker("farm-1")
    kit.registry.set_schedule(
        parse_selector("desk"), parse_schedule("22:00-06:00, mon 10:00-11:00")
    )
    kit.submit(frames="1-2")
    kit.dispatch()
    assert peer_of(sleeper).take() == []
    assert len(peer_of(awake).take()) == 1
    kit.registry.set_schedule(parse_selector("desk"), None)  # cleared: it takes work again
    assert len(kit.orders(sleeper)) == 1


def test_stop_when_idle_lets_the_task_finish_and_gives_no_new_one(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    job = kit.submit(frames="1-2")
    (order,) = kit.orders(worker)
    kit.registry.begin_stop(worker, "stop", "idle")
    assert kit.farm.stop_worker(worker, "stop", "idle") == []
    assert peer_of(worker).take("worker.stop") == [{"action": "stop", "when": "idle"}]
    kit.finish(worker, order)
    assert kit.orders(worker) == []  # the second task waits for another worker
    assert [t.status for t in kit.farm.board.jobs[job].tasks] == ["completed", "queued"]
    assert worker.view()["stopping"] == {"action": "stop", "when": "idle"}


def test_stop_now_requeues_the_running_task_without_counting_an_attempt(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    other = kit.worker("w2")
    peer_of(other).close("busy elsewhere")  # not yet: w2 takes nothing in the first pass
    kit.registry.set_enabled(parse_selector("w2"), False)
    job = kit.submit(frames="1")
    (order,) = kit.orders(worker)
    kit.registry.begin_stop(worker, "restart", "now")
    (task,) = kit.farm.board.jobs[job].tasks
    assert kit.farm.stop_worker(worker, "restart", "now") == [task.id]
    assert (task.status, task.attempts) == ("queued", 0)
    # The killed task's report is stale, and the task goes to the next worker.
    with pytest.raises(RpcError) as refused:
        kit.farm.task_finished(worker, order["attempt"], None, "canceled")
    assert refused.value.code == ErrorCode.CONFLICT
    third = kit.worker("w3")
    assert len(kit.orders(third)) == 1
    assert kit.orders(worker) == []


def test_a_new_hello_clears_the_stop(kit: FarmKit) -> None:
    worker = kit.worker("w1")
    kit.registry.begin_stop(worker, "restart", "idle")
    kit.lose(worker)
    again = kit.worker("w1")
    assert again.stopping is None
    kit.submit(frames="1")
    assert len(kit.orders(again)) == 1


# -- the registry: bulk forget, stored schedules ----------------------------------------------
def test_prune_forgets_only_clients_offline_long_enough(kit: FarmKit) -> None:
    old, recent, online = kit.worker("old"), kit.worker("recent"), kit.worker("online")
    kit.lose(old)
    kit.clock.advance(3600)
    kit.lose(recent)
    kit.clock.advance(60)
    forgotten = kit.registry.prune(1800, kit.clock.wall())
    assert [client.name for client in forgotten] == ["old"]
    assert sorted(c.name for c in kit.registry.clients()) == ["online", "recent"]
    assert online.online


# -- the node and the exit codes --------------------------------------------------------------
def running(policy: Policy) -> Lifecycle:
    life = Lifecycle("worker", policy)
    assert life.start(0.0) is Action.SPAWN
    life.spawned(0.0, 100)
    life.tick(2.0)
    assert life.state is State.RUNNING
    return life


@pytest.mark.parametrize("policy", ["always", "on-failure", "never"])
def test_the_node_restarts_on_the_restart_code_and_not_on_the_stop_code(policy: str) -> None:
    life = running(Policy(restart=policy))
    assert life.exited(60.0, EXIT_RESTART) is Action.SPAWN
    assert life.state is State.STARTING
    life.spawned(60.0, 101)
    assert life.exited(60.2, EXIT_RESTART) is Action.SPAWN  # quick, yet not a failed start
    assert life.failures == 0
    life.spawned(60.2, 102)
    assert life.exited(90.0, EXIT_STOP) is Action.NOTHING
    assert life.state is State.EXITED
    assert life.tick(1000.0) is Action.NOTHING


# -- host facts -------------------------------------------------------------------------------
def test_host_facts(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16318592 kB\nMemFree: 1 kB\nMemAvailable:    8000000 kB\n")
    assert read_meminfo(meminfo)["MemTotal"] == 16318592 * 1024
    facts = host_info(meminfo)
    assert facts["cpus"] >= 1
    assert facts["mem_available_bytes"] == 8000000 * 1024
    assert len(facts["load"]) == 3
    assert read_meminfo(tmp_path / "none") == {}


# -- the API and the console ------------------------------------------------------------------
@pytest.fixture
def master(tmp_path: Path) -> Iterator[MasterKit]:
    kit = MasterKit(tmp_path)
    kit.clock._wall = local(MON, 10)
    yield kit
    kit.close()


def test_schedule_through_the_api_is_stored_listed_and_cleared(master: MasterKit) -> None:
    master.agent("worker", "desk-1")
    master.agent("worker", "farm-1")
    result = master.call("clients.schedule", select="desk-*", schedule="MON-FRI 09:00-19:00")
    assert result == {
        "matched": ["desk-1"],
        "changed": ["desk-1"],
        "schedule": "mon-fri 09:00-19:00",
    }
    rows = {row["name"]: row for row in master.call("clients.list")["clients"]}
    assert (rows["desk-1"]["schedule"], rows["desk-1"]["asleep"]) == ("mon-fri 09:00-19:00", True)
    assert (rows["farm-1"]["schedule"], rows["farm-1"]["asleep"]) == (None, False)
    # Answered once stored (an audited write waits for the saver).
    stored = {r.name: r.schedule for r in master.services.store.load_clients()}
    assert stored == {"desk-1": "mon-fri 09:00-19:00", "farm-1": None}
    with pytest.raises(RpcError) as bad:
        master.call("clients.schedule", select="desk-1", schedule="mon 9-5")
    assert bad.value.code == ErrorCode.INVALID_PARAMS and "HH:MM-HH:MM" in bad.value.message
    assert master.call("clients.get", name="desk-1")["schedule"] == "mon-fri 09:00-19:00"
    cleared = master.call("clients.schedule", select="desk-1", schedule=None)
    assert cleared["changed"] == ["desk-1"]
    assert master.call("clients.get", name="desk-1")["schedule"] is None
    audited = [entry["method"] for entry in master.call("audit.list")["entries"]]
    assert audited.count("clients.schedule") == 3  # the refused one too


def test_stop_and_restart_through_the_api_and_console(master: MasterKit) -> None:
    _, peer = master.agent("worker", "w1")
    master.agent("hardware", "tap-1")
    result = master.call("clients.stop", select="all", when="idle")
    assert result == {"ordered": ["w1"], "skipped": ["tap-1"], "requeued": [], "when": "idle"}
    assert peer.sent("worker.stop") == [{"action": "stop", "when": "idle"}]
    assert master.call("clients.get", name="w1")["stopping"] == {"action": "stop", "when": "idle"}
    text = master.console("restart w1 --when now")
    assert "restart (now) ordered: w1" in text
    assert peer.sent("worker.stop")[-1] == {"action": "restart", "when": "now"}
    with pytest.raises(RpcError) as bad:
        master.call("clients.stop", select="w1", when="later")
    assert bad.value.code == ErrorCode.INVALID_PARAMS
    assert "usage: stop SELECTOR" in master.console("stop")


def test_a_worker_still_draining_says_so_in_hello_and_gets_no_task(master: MasterKit) -> None:
    _, peer = master.agent("worker", "w1", stopping={"action": "restart", "when": "idle"})
    assert master.call("clients.get", name="w1")["stopping"] == {
        "action": "restart",
        "when": "idle",
    }
    master.call("jobs.submit", name="j", argv=["true"])
    master.dispatch()
    assert peer.sent("task.run") == [] and peer.sent("worker.stop") == []


def test_heartbeat_host_facts_reach_clients_get(master: MasterKit) -> None:
    facts = {"cpus": 8, "mem_total_bytes": 1 << 34, "mem_available_bytes": 1 << 33}
    session, _ = master.agent("worker", "w1", info={"host_info": {"cpus": 4}})
    assert master.call("clients.get", name="w1")["host_info"] == {"cpus": 4}
    master.call("heartbeat", session, running=[], host={**facts, "load": [0.5, 1, 2], "x": 1})
    got = master.call("clients.get", name="w1")
    assert got["host_info"] == {**facts, "load": [0.5, 1.0, 2.0]}
    assert "cpus 8" in master.console("inspect w1")


def test_prune_through_the_api_and_console(master: MasterKit) -> None:
    session, _ = master.agent("worker", "gone")
    master.agent("worker", "here")
    master.services.registry.disconnect(
        session.client, session.connection, master.clock.wall(), "test"
    )
    master.clock.advance(7200)
    assert master.call("clients.prune", offline_for_s=86400) == {
        "forgotten": [],
        "offline_for_s": 86400,
    }
    assert "forgot 1 client: gone" in master.console("prune --offline-for 1h")
    assert [c["name"] for c in master.call("clients.list")["clients"]] == ["here"]
    with pytest.raises(RpcError):
        master.call("clients.get", name="gone")


# -- the worker's side ------------------------------------------------------------------------
def test_a_worker_told_to_stop_takes_no_task_and_exits_with_the_code(tmp_path: Path) -> None:
    exits: list[int] = []
    stopped = Event()

    def on_stopped(code: int) -> None:
        exits.append(code)
        stopped.set()

    service = WorkerService(slots=2, work_dir=tmp_path, on_stopped=on_stopped)
    assert service.stop_worker({"action": "restart", "when": "idle"}) == {"running": []}
    assert service.hello_params()["stopping"] == {"action": "restart", "when": "idle"}
    order = {"attempt": "1.1.abc", "task_id": 1, "job_id": 1, "argv": ["true"]}
    with pytest.raises(RpcError) as refused:
        service.run_task(order)
    assert refused.value.reason == "shutting_down"
    assert stopped.wait(5)  # nothing was running: the stop is carried out at once
    assert exits == [EXIT_RESTART]
    with pytest.raises(RpcError):
        service.stop_worker({"action": "halt", "when": "idle"})
