"""The master's board of supervised processes with a fake clock: reports of a node that went
offline turn stale, and are dropped once it has been gone longer than the configured time."""

from __future__ import annotations

import orjson
import pytest

from farmhand.master.clock import FakeClock
from farmhand.master.events import EventBus
from farmhand.master.procs import ProcBoard
from farmhand.master.registry import RuntimeClient
from models.store import ClientRecord

pytestmark = [pytest.mark.fast, pytest.mark.timeout(10)]


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def send_bytes(self, data: bytes) -> None:
        self.events.append(orjson.loads(data)["params"]["data"])


def node(name: str) -> RuntimeClient:
    return RuntimeClient(ClientRecord(1, name, "node", "h", True, [], 0, 0.0, 0.0, {}))


def board(clock: FakeClock, events: EventBus | None = None, **kwargs: float) -> ProcBoard:
    return ProcBoard(events or EventBus(), wall=clock.wall, mono=clock.mono, **kwargs)


def test_a_node_gone_longer_than_the_limit_is_dropped_from_every_view() -> None:
    # Issue 10 finding 3: the rows of a node that is gone stayed in procs.list forever.
    clock = FakeClock()
    events, recorder = EventBus(), Recorder()
    events.subscribe(recorder, ["procs"])
    procs = board(clock, events, offline_ttl_s=600.0)
    procs.update("gone", [{"agent": "w1", "state": "running", "pid": 10}])
    procs.update("here", [{"agent": "w2", "state": "running", "pid": 11}])
    procs.client_changed(node("gone"), "offline")
    clock.advance(599.0)
    assert [(r["node"], r["stale"]) for r in procs.rows()] == [("gone", True), ("here", False)]
    assert procs.owner("w1", None) == "gone"
    clock.advance(1.0)
    assert [r["node"] for r in procs.rows()] == ["here"]
    assert [n["node"] for n in procs.nodes()] == ["here"]
    with pytest.raises(Exception, match="no node reports an agent named 'w1'"):
        procs.owner("w1", None)
    assert recorder.events[-1] == {"node": "gone", "online": False, "procs": [], "expired": True}


def test_a_node_back_in_time_keeps_its_report_and_zero_keeps_stale_rows_forever() -> None:
    clock = FakeClock()
    procs = board(clock, offline_ttl_s=600.0)
    procs.update("n1", [{"agent": "w1", "state": "running"}])
    procs.client_changed(node("n1"), "offline")
    clock.advance(300.0)
    procs.update("n1", [{"agent": "w1", "state": "running"}])  # it came back and reported
    clock.advance(3000.0)
    assert [r["stale"] for r in procs.rows()] == [False]

    forever = board(clock, offline_ttl_s=0.0)
    forever.update("n2", [{"agent": "w9", "state": "exited"}])
    forever.client_changed(node("n2"), "offline")
    clock.advance(10**7)
    assert [r["node"] for r in forever.rows()] == ["n2"]
