"""The worker page (/clients/<name>) in a real browser against a real master, worker and
dashboard (the fixtures of test_dashboard_browser.py): reached from the clients list, it shows
host facts from heartbeats and the worker's recent tasks, sets and clears a sleep schedule,
and its "Stop when idle" button makes the real worker exit with the stop code."""

from __future__ import annotations

import os
from typing import Any

import pytest

from farmhand.agent.exits import EXIT_STOP
from tests.e2e.test_dashboard_browser import browser, farm, page, shot, sync_api
from tests.support import RpcClient, wait_for

__all__ = ["browser", "farm", "page"]  # the fixtures, shared with test_dashboard_browser.py

pytestmark = pytest.mark.timeout(120)


def test_the_worker_page(page: Any, farm: dict[str, Any]) -> None:
    with RpcClient(farm["master"].port) as rpc:
        job_id = rpc.call("jobs.submit", name="on-w1", argv=["false"], max_attempts=1)["job_id"]
        wait_for(lambda: rpc.call("jobs.get", job_id=job_id)["status"] == "failed", what="job")
        wait_for(lambda: rpc.call("clients.get", name="w1")["host_info"].get("load"), what="beat")
    page.goto(page.base + "/clients")
    page.locator('tr[data-name="w1"] a', has_text="w1").click()
    page.wait_for_url(f"{page.base}/clients/w1")
    page.wait_for_selector('body[data-ready="1"]')
    expect = sync_api.expect
    expect(page.locator("#host-info")).to_contain_text(f"{os.cpu_count()} CPUs")
    expect(page.locator("#host-info")).to_contain_text("GiB memory free")
    expect(page.locator("#history tbody")).to_contain_text(str(job_id))
    expect(page.locator("#failures tbody")).to_contain_text("exit code 1")
    page.fill("#schedule", "mon-sun")
    page.click("#schedule-form button[type=submit]")
    expect(page.locator("#schedule-state")).to_contain_text("mon-sun — asleep now")
    expect(page.locator("#client-summary .badge.s-asleep")).to_be_visible()
    shot(page, "client-page")
    with RpcClient(farm["master"].port) as rpc:
        assert rpc.call("clients.get", name="w1")["schedule"] == "mon-sun"
    page.click("#schedule-clear")
    expect(page.locator("#schedule-state")).to_contain_text("No schedule")
    page.get_by_role("button", name="Stop when idle").click()
    assert farm["worker"].proc.wait(30) == EXIT_STOP
    assert page.errors == []
