"""Every event's `data` is the view its list or get method returns (docs/events.md), checked
over real TCP against a real master: a subscriber and a list must never disagree on a shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import MasterProcess, RpcClient, agent


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[MasterProcess]:
    process = MasterProcess(tmp_path / "var")
    yield process
    process.stop()


@pytest.fixture
def admin(hub: MasterProcess) -> Iterator[RpcClient]:
    with RpcClient(hub.port) as client:
        yield client


def event_of(admin: RpcClient, topic: str, **match: Any) -> Any:
    params = admin.wait_event(
        lambda e: e["topic"] == topic and all(e["data"].get(k) == v for k, v in match.items())
    )
    assert set(params) == {"topic", "data"}
    return params["data"]


def test_a_clients_event_carries_the_clients_list_row(hub: MasterProcess, admin: RpcClient) -> None:
    admin.call("subscribe", topics=["clients"])
    with agent(hub.port, "render-01", info={"slots": 2, "tags": ["gpu"]}):
        online = event_of(admin, "clients", change="online")
        assert set(online) == {"change", "client"}
        [row] = admin.call("clients.list")["clients"]
        assert online["client"] == row
        admin.call("clients.disable", select="render-01")
        disabled = event_of(admin, "clients", change="disabled")
        assert disabled["client"] == admin.call("clients.list")["clients"][0]


def test_jobs_and_tasks_events_carry_the_job_and_task_rows(admin: RpcClient) -> None:
    admin.call("subscribe", topics=["jobs", "tasks"])
    job_id = admin.call("jobs.submit", name="shape", argv=["true"], frames="1-2")["job_id"]
    admin.call("jobs.cancel", job_id=job_id)
    # The last jobs event of the cancel: the job canceled with both its tasks counted.
    job = admin.wait_event(
        lambda e: e["topic"] == "jobs" and e["data"]["tasks_by_status"]["canceled"] == 2
    )["data"]
    [row] = admin.call("jobs.list")["jobs"]
    assert job == row  # jobs.get adds `blocked`, computed on demand
    assert {**job, "blocked": None} == admin.call("jobs.get", job_id=job_id)
    rows = {row["id"]: row for row in admin.call("tasks.list", job_id=job_id)["tasks"]}
    for _ in rows:
        task = event_of(admin, "tasks", job_id=job_id, status="canceled")
        assert task == rows[task["id"]]


def test_a_readings_event_carries_the_readings_query_row(
    hub: MasterProcess, admin: RpcClient
) -> None:
    admin.call("subscribe", topics=["readings"])
    with agent(hub.port, "keg1", role="hardware") as board:
        board.notify("reading", sensor="thermo-1", kind="temperature", value=4.5, unit="C")
        reading = event_of(admin, "readings", sensor="thermo-1")
    assert [reading] == admin.call("readings.query", sensor="thermo-1")["readings"]
