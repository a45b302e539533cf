"""A job no worker may run says why (issue 10.7): `jobs.get` carries `blocked`, the console's
`job ID` prints it, the dashboard's job page shows it. Real master, fake workers over sockets."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from dashboard.app import create_app
from dashboard.runtime import Dashboard, Settings
from dashboard.testclient import WsgiClient
from farmhand.options import MasterAddress
from tests.integration.fakeworker import FakeWorker, job_view, submit
from tests.support import ConsoleClient, MasterProcess, RpcClient, wait_for

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def fakes() -> Iterator[list[FakeWorker]]:
    opened: list[FakeWorker] = []
    yield opened
    for fake in opened:
        fake.close()


def blocked(api: RpcClient, job_id: int) -> str | None:
    return job_view(api, job_id)["blocked"]


def test_a_job_blocklisted_on_its_only_capable_worker_says_why(
    master: MasterProcess, api: RpcClient, fakes: list[FakeWorker]
) -> None:
    w1 = FakeWorker(master.port, "w1", tags=["gpu"])
    w2 = FakeWorker(master.port, "w2")
    fakes += [w1, w2]
    job_id = submit(api, "stranded", frames="1-4", tags=["gpu"], max_attempts=10, retry_delay_s=0)
    assert blocked(api, job_id) is None  # w1 may take it
    for _ in range(3):
        order = w1.take()
        assert w1.finished(order["attempt"], exit_code=1)["result"] == {}
    w1.expect_no_order(within=0.3)
    reason = wait_for(lambda: blocked(api, job_id), what="a blocked reason")
    assert reason == "no worker may run this: blocklisted on w1; needs tag gpu (not on w2)"
    with ConsoleClient(master.port) as console:
        text = console.command(f"job {job_id}")
    assert f"blocked:   {reason}" in text
    # jobs.list and the events stay cheap: only jobs.get computes it.
    assert "blocked" not in api.call("jobs.list")["jobs"][0]


def test_the_reason_names_offline_and_disabled_workers_and_clears_when_one_may_run_it(
    master: MasterProcess, api: RpcClient, fakes: list[FakeWorker]
) -> None:
    odd = submit(api, "odd", tags=["xyz"])
    assert blocked(api, odd) == "no worker may run this: no worker has ever connected"
    FakeWorker(master.port, "gpu1", tags=["gpu"]).close()
    wait_for(lambda: not api.call("clients.list", select="gpu1")["clients"][0]["online"])
    job_id = submit(api, "waiting", tags=["gpu"])
    assert blocked(api, job_id) == "no worker online may run this: offline: gpu1"
    api.call("clients.disable", select="gpu1")
    assert blocked(api, job_id) == "no worker may run this: disabled: gpu1"
    again = FakeWorker(master.port, "gpu1", tags=["gpu"])
    fakes.append(again)
    again.expect_no_order(within=0.3)
    assert blocked(api, job_id) == "no worker may run this: disabled: gpu1"
    api.call("clients.enable", select="gpu1")
    again.take()
    assert blocked(api, job_id) is None
    assert blocked(api, odd) == "no worker may run this: needs tag xyz (not on gpu1)"


def test_a_job_waiting_for_a_failed_dependency_or_a_retry_says_so(
    master: MasterProcess, api: RpcClient, fakes: list[FakeWorker]
) -> None:
    fake = FakeWorker(master.port, "w1")
    fakes.append(fake)
    first = submit(api, "first", max_attempts=1)
    second = submit(api, "second", depends_on=[first])
    order = fake.take()
    assert blocked(api, second) == f"waits for job {first} (active)"
    assert fake.finished(order["attempt"], exit_code=1)["result"] == {}
    assert blocked(api, second) == f"waits for job {first} failed (requeue or cancel it)"
    api.call("jobs.cancel", job_id=second)
    retried = submit(api, "retried", max_attempts=2, retry_delay_s=30)
    order = fake.take()
    assert fake.finished(order["attempt"], exit_code=1)["result"] == {}
    reason = blocked(api, retried)
    assert reason is not None and reason.startswith("waiting to retry failed tasks: the next in")


def test_the_dashboard_job_page_shows_the_reason(
    master: MasterProcess, api: RpcClient, fakes: list[FakeWorker]
) -> None:
    api.call("users.create", username="root", password="root-password-1", admin=True)
    fakes.append(FakeWorker(master.port, "cpu1"))
    job_id = submit(api, "needs-gpu", tags=["gpu"])
    dash = Dashboard(Settings(master=MasterAddress(master.host, master.port)))
    dash.start()
    try:
        assert dash.master.wait_connected(10)
        client = WsgiClient(create_app(dash))
        page = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        form = {"username": "root", "password": "root-password-1", "csrf": token}
        assert client.post("/login", form=form).status == 303
        page = client.get(f"/jobs/{job_id}")
        assert page.status == 200
        assert 'id="job-blocked"' in page.text
        assert "no worker may run this: needs tag gpu (not on cpu1)" in page.text
    finally:
        dash.stop()
