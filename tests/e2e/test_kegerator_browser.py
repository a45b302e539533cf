"""The kegerator's pages in a real browser (the fixtures of test_dashboard_browser.py: Debian
chromium, Playwright, a real master and `python -m dashboard`): the kiosk counting a pour up
live, the taps page with the beverage's SRM swatch, a raised alert and a pour reassigned through
its button, the user page and the keg page with their uPlot charts. Screenshots go to
tests/artifacts/screenshots/."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_dashboard_browser import (  # noqa: F401  (pytest fixtures, used by name)
    browser,
    farm,
    mark_page,
    not_reloaded,
    page,
    shot,
    sync_api,
)
from tests.support import RpcClient, agent

pytestmark = pytest.mark.timeout(120)

ALICE_CARD = "a11ce0001"


def test_kiosk_taps_user_and_keg_pages(page: Any, farm: dict[str, Any]) -> None:  # noqa: F811
    port = farm["master"].port
    with RpcClient(port) as rpc:
        rpc.call("taps.configure", tap="tap1", meter="keg1.flow0", idle_s=1)
        rpc.call("taps.configure", tap="tap2", meter="keg1.flow1", idle_s=1)
        rpc.call("users.create", username="alice")
        rpc.call("users.create", username="bob")
        rpc.call("tokens.assign", reader="core.rfid", token=ALICE_CARD, username="alice")
        keg = rpc.call(
            "kegs.start", tap="tap1", beverage="Stoat Stout", size="corny", style="Dry stout",
            abv=4.2, ibu=45, srm=40,
        )  # fmt: skip
        rpc.call("kegs.start", tap="tap2", beverage="Pils", size="euro-30", abv=4.8, srm=3)
        rpc.call("sensors.place", sensor="fridge1", tap="tap1", fridge="kegerator")
        rpc.call("alerts.create", kind="above", target="fridge1", value=6, minutes=0)
    page.goto(page.base + "/taps/kiosk")
    mark_page(page)
    page.locator('article[data-tap="tap1"]').wait_for()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    with agent(port, "keg1", role="hardware") as hardware:
        hardware.call("token.update", reader="core.rfid", token=ALICE_CARD, present=True)
        hardware.call("meter.update", meter="flow0", ticks=1000)  # the baseline
        for ticks in range(1100, 2000, 100):
            hardware.call("meter.update", meter="flow0", ticks=ticks)
        flow = page.locator('.kiosk-flow[data-flow="tap1"]')
        sync_api.expect(flow).to_contain_text("Pouring 330 ml · alice")
        shot(page, "kiosk-pouring")
        for value in (5.0, 7.5, 8.0):  # the fridge warms up: the alert rule fires
            hardware.call("reading", sensor="fridge1", kind="temperature", value=value, unit="C")
        left = page.locator('article[data-tap="tap1"] .kiosk-left')
        sync_api.expect(left).to_contain_text("18.60 L left", timeout=15_000)
    assert not_reloaded(page)
    shot(page, "kiosk")

    page.goto(page.base + "/taps")
    swatch = page.locator('article[data-tap="tap1"] .srm')
    sync_api.expect(swatch).to_have_css("background-color", "rgb(5, 11, 10)")  # SRM 40: black
    sync_api.expect(page.locator("#alert-list li")).to_contain_text("fridge1 above 6")
    sync_api.expect(page.locator('article[data-tap="tap1"] .sensors')).to_contain_text("8 C")
    row = page.locator("#pours tr[data-pour]").first
    sync_api.expect(row).to_contain_text("alice")
    page.once("dialog", lambda dialog: dialog.accept("bob"))
    row.locator('button[data-fix="user"]').click()
    sync_api.expect(page.locator("#pours tr[data-pour]").first).to_contain_text("bob")
    shot(page, "taps-beverages-alerts")

    page.goto(page.base + "/people/bob")
    sync_api.expect(page.locator("#totals")).to_contain_text("330 ml")
    page.locator("#by-weekday .uplot canvas").wait_for()
    sync_api.expect(page.locator("#sessions tr[data-session]")).to_have_count(1)
    shot(page, "user-page")

    page.goto(page.base + f"/kegs/{keg['id']}")
    sync_api.expect(page.locator("#keg-facts")).to_contain_text("Dry stout")
    page.locator("#by-drinker .uplot canvas").wait_for()
    page.locator("#temperature .uplot canvas").wait_for()
    sync_api.expect(page.locator("#pours tr[data-pour]")).to_contain_text("bob")
    shot(page, "keg-page")

    page.goto(page.base + "/readings")
    sync_api.expect(page.locator('#rule-rows tr[data-rule="1"]')).to_contain_text("raised")
    page.select_option("#add-rule select[name=kind]", "below")
    page.fill("#add-rule input[name=target]", "fridge1")
    page.fill("#add-rule input[name=value]", "1")
    page.fill("#add-rule input[name=minutes]", "10")
    page.click("#add-rule button[type=submit]")
    sync_api.expect(page.locator('#rule-rows tr[data-rule="2"]')).to_contain_text(
        "fridge1 below 1 for 10 min"
    )
    shot(page, "readings-alert-rules")
    with RpcClient(port) as rpc:
        assert [r["kind"] for r in rpc.call("alerts.list")["rules"]] == ["above", "below"]
    assert page.errors == []
