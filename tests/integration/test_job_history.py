"""Finished jobs over the real interface, on SQLite and PostgreSQL: they leave the master's memory
once stored, their views still answer (also after a restart), and jobs.delete removes them with
their tasks and logs, one by one and in bulk from the `farmhand` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import MasterProcess, Program, RpcClient, RpcFailure, farmhand, wait_for

pytestmark = pytest.mark.timeout(120)


def start_master(data_dir: Path, db: str) -> MasterProcess:
    return MasterProcess(data_dir, "--db", db, "--heartbeat-s", "0.5")


def finished(api: RpcClient, job_id: int) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        view: dict[str, Any] = api.call("jobs.get", job_id=job_id)
        return view if view["status"] in ("completed", "failed", "canceled") else None

    return wait_for(done, 30, 0.05, f"job {job_id} to finish")  # type: ignore[no-any-return]


def farm_jobs_in_memory(api: RpcClient) -> int:
    return int(api.call("status")["farm"]["jobs"])


def test_a_finished_job_leaves_memory_and_its_views_answer_also_after_a_restart(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "var"
    master = start_master(data_dir, database_url)
    worker = Program(
        "worker.py",
        *("--master", master.address, "--name", "w1", "--work-dir", str(tmp_path / "work")),
        log_path=tmp_path / "worker.log",
    )
    try:
        with RpcClient(master.port) as api:
            job_id = api.call(
                "jobs.submit", name="shot", argv=["echo", "frame {frame}"], frames="1-3"
            )["job_id"]
            assert finished(api, job_id)["status"] == "completed"
            wait_for(lambda: farm_jobs_in_memory(api) == 0, 10, 0.05, "the job to leave memory")
            before = views_of(api, job_id)
            assert before["job"]["tasks_by_status"]["completed"] == 3
            assert [t["status"] for t in before["tasks"]] == ["completed"] * 3
            assert "frame 2" in before["log"]
            assert before["listed"] == [job_id]
        master.stop()
        worker.stop()
        master = start_master(data_dir, database_url)
        with RpcClient(master.port) as api:
            assert farm_jobs_in_memory(api) == 0  # the history is not loaded at start
            after = views_of(api, job_id)
            assert after == before
            # A requeue loads it back; it runs again and leaves again.
            task_id = before["tasks"][0]["id"]
            assert api.call("tasks.requeue", task_id=task_id)["status"] == "queued"
            assert api.call("jobs.get", job_id=job_id)["status"] == "active"
    finally:
        master.stop()
        worker.stop()


def views_of(api: RpcClient, job_id: int) -> dict[str, Any]:
    job = api.call("jobs.get", job_id=job_id)
    tasks = api.call("tasks.list", job_id=job_id)["tasks"]
    log = api.call("tasks.log", task_id=tasks[1]["id"])
    listed = api.call("jobs.list", status="completed")
    return {
        "job": job,
        "tasks": tasks,
        "log": log["text"] if log["complete"] else None,
        "listed": [j["id"] for j in listed["jobs"]],
    }


def test_jobs_delete_rules_rows_and_log_files_and_bulk_from_the_cli(
    tmp_path: Path, database_url: str
) -> None:
    data_dir = tmp_path / "var"
    master = start_master(data_dir, database_url)
    worker = Program(
        "worker.py",
        *("--master", master.address, "--name", "w1", "--work-dir", str(tmp_path / "work")),
        log_path=tmp_path / "worker.log",
    )
    try:
        with RpcClient(master.port) as api:
            done = [
                api.call("jobs.submit", name=f"j{i}", argv=["echo", "{frame}"], frames="1-2")[
                    "job_id"
                ]
                for i in range(3)
            ]
            failing = api.call("jobs.submit", name="bad", argv=["false"], max_attempts=1)
            failed_id = failing["job_id"]
            waiting = api.call("jobs.submit", name="waits", argv=["echo"], tags=["nowhere"])[
                "job_id"
            ]
            for job_id in [*done, failed_id]:
                finished(api, job_id)
            logs = data_dir / "logs"
            assert (logs / f"job-{done[0]}").is_dir()

            with pytest.raises(RpcFailure) as refused:
                api.call("jobs.delete", job_id=waiting)
            assert refused.value.error["code"] == -32009
            with pytest.raises(RpcFailure) as missing:
                api.call("jobs.delete", job_id=999)
            assert missing.value.error["code"] == -32004

            assert api.call("jobs.delete", job_id=done[0]) == {}
            for method, params in (
                ("jobs.get", {"job_id": done[0]}),
                ("tasks.list", {"job_id": done[0]}),
                ("jobs.delete", {"job_id": done[0]}),
            ):
                with pytest.raises(RpcFailure) as gone:
                    api.call(method, **params)
                assert gone.value.error["code"] == -32004, method
            assert not (logs / f"job-{done[0]}").exists()
            assert api.call("jobs.list")["total"] == 4

            bulk = farmhand("--json", "delete", "--status", "completed", master=master)
            assert bulk.returncode == 0, bulk.stderr
            assert sorted(json.loads(bulk.stdout)["deleted"]) == done[1:]
            mixed = farmhand("delete", str(failed_id), str(waiting), master=master)
            assert mixed.returncode == 1
            assert "deleted 1 of 2 jobs" in mixed.stdout
            assert f"job {waiting}: job {waiting} is queued" in mixed.stdout
            listed = api.call("jobs.list")
            assert [j["id"] for j in listed["jobs"]] == [waiting]
            assert sorted(p.name for p in logs.iterdir()) == []
            audit = api.call("audit.list", limit=20)
            deletes = [e for e in audit["entries"] if e["method"] == "jobs.delete"]
            assert len(deletes) >= 6
    finally:
        master.stop()
        worker.stop()
