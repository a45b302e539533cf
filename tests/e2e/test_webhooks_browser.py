"""The Webhooks page in a real browser (the Playwright + Debian chromium setup of
test_dashboard_browser.py, with its fixtures): an admin creates a signed webhook through the
form, a job the real worker runs is POSTed to a real HTTP server on 127.0.0.1, the delivery log
shows its status code and latency, and the webhook is deleted. Screenshot: webhooks.png."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_dashboard_browser import browser, farm, page, shot  # noqa: F401  (fixtures)
from tests.support import RpcClient, wait_for
from tests.webhookreceiver import Receiver

pytestmark = pytest.mark.timeout(120)


def test_create_a_webhook_see_its_delivery_log_and_delete_it(
    page: Any,  # noqa: F811
    farm: dict[str, Any],  # noqa: F811
) -> None:
    receiver = Receiver("browser-secret")
    try:
        page.goto(page.base + "/webhooks")
        page.wait_for_selector('body[data-ready="1"]')
        page.fill("#webhook-create input[name=url]", receiver.url)
        page.fill("#webhook-create input[name=secret]", "browser-secret")
        page.check('#webhook-events input[value="job.completed"]')
        page.click("#webhook-create button[type=submit]")
        row = page.locator("#webhooks tbody tr[data-id]")
        row.wait_for()
        assert receiver.url in row.inner_text()
        with RpcClient(farm["master"].port) as rpc:
            rpc.call("jobs.submit", name="hooked", argv=["true"], frames="1")
        wait_for(lambda: receiver.posts, timeout=30, what="the job.completed POST")
        (post,) = receiver.posts
        assert post["verified"] and post["body"]["event"] == "job.completed"
        assert post["body"]["data"]["name"] == "hooked"
        # The page follows the `jobs` event: the delivery log shows the 200 without a reload.
        row.locator(".last-status", has_text="200").wait_for()
        delivery = page.locator("#deliveries tbody tr", has_text="job.completed")
        delivery.locator(".badge", has_text="delivered").wait_for()
        assert "ms" in delivery.inner_text()
        shot(page, "webhooks")
        page.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name="delete").click()
        page.locator("#webhooks tbody", has_text="no webhooks").wait_for()
        with RpcClient(farm["master"].port) as rpc:
            assert rpc.call("webhooks.list") == {"webhooks": []}
        assert page.errors == []
    finally:
        receiver.close()
