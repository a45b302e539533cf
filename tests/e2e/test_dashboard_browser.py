"""The dashboard in a real browser (Debian chromium driven by Playwright) against a real master,
worker and `python -m dashboard`: log in, disable a worker, submit a job and watch it finish,
follow a task's log, see a pour, watch a
job's frames arrive as previews. Screenshots go to tests/artifacts/screenshots/.

Skipped only when /usr/bin/chromium is missing and CI is unset (in CI a missing browser fails).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, ConsoleClient, MasterProcess, Program, RpcClient, agent, wait_for

CHROMIUM = Path(os.environ.get("FARMHAND_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = ROOT / "tests" / "artifacts" / "screenshots"
ADMIN = ("admin", "admin-password-1")
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 900}

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is not installed (apt install chromium)", allow_module_level=True)
from playwright import sync_api  # noqa: E402  (after the skip: a missing package is a failure)

pytestmark = pytest.mark.timeout(120)


class DashboardProcess:
    """`python -m dashboard --port 0`; `.url` is read from its first line of output."""

    def __init__(self, master: str, log_path: Path):
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dashboard", "--master", master, "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        match = re.search(r"(http://\S+?)/? ", line)
        if not match:
            self.proc.kill()
            raise AssertionError(f"dashboard did not start: {line!r}\n{log_path.read_text()}")
        self.url = match.group(1)

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(15)
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
            self._log.close()


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("browser")
    master = MasterProcess(base / "var", "--heartbeat-s", "1")
    with RpcClient(master.port) as rpc:
        rpc.call("users.create", username=ADMIN[0], password=ADMIN[1], admin=True)
    worker = Program(
        "worker.py",
        *("--master", master.address, "--name", "w1", "--work-dir", str(base / "work")),
        log_path=base / "worker.log",
    )
    dashboard = DashboardProcess(master.address, base / "dashboard.log")
    with RpcClient(master.port) as rpc:
        wait_for(lambda: rpc.call("clients.list", select="w1 online")["clients"], what="w1 online")
    SHOTS.mkdir(parents=True, exist_ok=True)
    processes = {"master": master, "worker": worker, "dashboard": dashboard}
    yield processes
    assert dashboard.stop() == 0  # SIGTERM → a clean exit
    worker.stop()
    processes["master"].stop()  # a test may have restarted it


@pytest.fixture(scope="module")
def browser(farm: dict[str, Any]) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser: Any, farm: dict[str, Any]) -> Iterator[Any]:
    """One logged-in admin tab; page errors fail the test that caused them."""
    context = browser.new_context(viewport=LAPTOP)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    tab.errors = []
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    url = farm["dashboard"].url
    tab.goto(f"{url}/login")
    shot(tab, "login")
    tab.fill("input[name=username]", ADMIN[0])
    tab.fill("input[name=password]", ADMIN[1])
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{url}/")
    tab.base = url
    yield tab
    context.close()


def shot(tab: Any, name: str) -> None:
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def mark_page(tab: Any) -> None:
    """Tag the document so a later check proves that it was never reloaded."""
    tab.evaluate("window.__notReloaded = true")


def not_reloaded(tab: Any) -> bool:
    return bool(tab.evaluate("window.__notReloaded === true"))


def test_every_page_renders(page: Any, browser: Any, farm: dict[str, Any]) -> None:
    for path, name in [
        ("/", "overview"),
        ("/clients", "clients"),
        ("/jobs", "jobs"),
        ("/taps", "taps"),
        ("/people", "people"),
        ("/readings", "readings"),
        ("/admin", "admin"),
        ("/audit", "audit"),
    ]:
        page.goto(page.base + path)
        page.wait_for_selector('body[data-ready="1"]')
        shot(page, name)
    assert page.errors == []
    # A phone, in dark mode: the same pages adapt (Pico follows prefers-color-scheme).
    context = browser.new_context(viewport=PHONE, color_scheme="dark", is_mobile=True)
    context.add_cookies(page.context.cookies())
    phone = context.new_page()
    for path, name in [("/", "overview-phone-dark"), ("/jobs", "jobs-phone-dark")]:
        phone.goto(page.base + path)
        phone.wait_for_selector('body[data-ready="1"]')
        shot(phone, name)
    background = phone.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background != "rgb(255, 255, 255)"
    context.close()


def test_disable_a_worker_from_the_clients_page(page: Any, farm: dict[str, Any]) -> None:
    page.goto(page.base + "/clients")
    row = page.locator('tr[data-name="w1"]')
    row.get_by_role("button", name="Disable").click()
    row.locator(".badge.s-no").wait_for()  # the row follows the `clients` event, no reload
    shot(page, "clients-disabled")
    with ConsoleClient(farm["master"].port) as console:
        wait_for(lambda: "1 disabled" in console.command("clients w1"))
    row.get_by_role("button", name="Enable").click()
    row.locator(".badge.s-yes").wait_for()
    with ConsoleClient(farm["master"].port) as console:
        assert "0 disabled" in console.command("clients w1")
    assert page.errors == []


def test_submit_a_job_and_watch_it_finish(page: Any) -> None:
    page.goto(page.base + "/jobs")
    mark_page(page)
    page.click("#submit-box summary")
    page.fill("#submit input[name=name]", "browser-job")
    page.fill("#submit input[name=frames]", "1-4")
    page.fill(
        "#submit textarea[name=argv]",
        "python3\n-c\nimport time; time.sleep(0.3); print('frame {frame} done')",
    )
    page.click("#submit button[type=submit]")
    row = page.locator("#jobs tbody tr", has_text="browser-job")
    row.wait_for()
    shot(page, "jobs-submitted")
    wait_for(
        lambda: row.locator("progress").get_attribute("value") == "100",
        timeout=30,
        what="the progress bar at 100%",
    )
    assert row.locator(".badge").inner_text() == "completed"
    assert not_reloaded(page)
    shot(page, "jobs-completed")
    assert page.errors == []


def test_bulk_delete_of_a_finished_job_from_the_jobs_list(page: Any) -> None:
    """The job of the test above is finished: check it, Delete, confirm; its row goes."""
    page.goto(page.base + "/jobs")
    row = page.locator("#jobs tbody tr", has_text="browser-job")
    row.wait_for()
    row.locator("input[type=checkbox]").check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-bulk=delete]")
    wait_for(lambda: row.count() == 0, timeout=20, what="the deleted job's row to go")
    shot(page, "jobs-deleted")
    assert page.errors == []


def test_a_live_log_line_appears(page: Any, farm: dict[str, Any]) -> None:
    script = (
        "import time\nfor i in range(40):\n    print('tick', i, flush=True); time.sleep(0.25)\n"
    )
    with RpcClient(farm["master"].port) as rpc:
        job_id = rpc.call("jobs.submit", name="chatty", argv=["python3", "-c", script])["job_id"]
        task_id = rpc.call("tasks.list", job_id=job_id)["tasks"][0]["id"]
        wait_for(lambda: rpc.call("tasks.list", job_id=job_id)["tasks"][0]["status"] == "running")
    page.goto(f"{page.base}/jobs/{job_id}")
    mark_page(page)
    page.locator(f'#tasks tr[data-id="{task_id}"]').get_by_role("button", name="log").click()
    sync_api.expect(page.locator("#log")).to_contain_text("tick 1")
    first = page.locator("#log").inner_text()
    # Later lines come through the log:<task_id> topic while the page stays put.
    sync_api.expect(page.locator("#log")).to_contain_text("tick 20", timeout=20_000)
    assert "tick 20" not in first and not_reloaded(page)
    shot(page, "job-log")
    with RpcClient(farm["master"].port) as rpc:
        rpc.call("jobs.cancel", job_id=job_id)
    assert page.errors == []


def test_a_failed_jobs_bar_is_red_and_a_running_task_row_is_live(
    page: Any, farm: dict[str, Any]
) -> None:
    with RpcClient(farm["master"].port) as rpc:
        failed = rpc.call(
            "jobs.submit", name="doomed", argv=["python3", "-c", "raise SystemExit(2)"],
            max_attempts=1,
        )["job_id"]  # fmt: skip
        wait_for(lambda: rpc.call("jobs.get", job_id=failed)["status"] == "failed", timeout=20)
    page.goto(page.base + "/jobs")
    bar = page.locator(f'#jobs tr[data-id="{failed}"] progress')
    sync_api.expect(bar).to_have_class("failed")
    red = bar.evaluate("e => getComputedStyle(e).getPropertyValue('--pico-progress-color')")
    assert red.strip() == "#c62828"
    # Its unfilled part too (it failed at 0%): the bar as drawn is red, not the usual grey.
    track = bar.evaluate("e => getComputedStyle(e).backgroundColor")
    assert track == "rgb(242, 184, 184)", track
    shot(page, "jobs-failed-red")
    page.goto(f"{page.base}/jobs/{failed}")
    sync_api.expect(page.locator("#job-progress")).to_have_class("failed")
    row = page.locator("#tasks tbody tr").first
    sync_api.expect(row.locator("td.why")).to_have_text("exit code 2")
    assert row.locator("td.attempts").inner_text() == "1"  # it ran once

    script = (
        "import time\nfor i in range(1, 101):\n    print(i, '%', flush=True); time.sleep(0.1)\n"
    )
    with RpcClient(farm["master"].port) as rpc:
        job_id = rpc.call("jobs.submit", name="steady", argv=["python3", "-c", script])["job_id"]
        page.goto(f"{page.base}/jobs/{job_id}")
        mark_page(page)
        wait_for(lambda: rpc.call("tasks.list", job_id=job_id)["tasks"][0]["status"] == "running")
    row = page.locator("#tasks tbody tr[data-status=running]")
    row.wait_for()
    progress = row.locator("progress")
    elapsed = row.locator("td.elapsed")
    wait_for(lambda: float(progress.get_attribute("value") or 0) >= 10, timeout=20)
    before = (float(progress.get_attribute("value") or 0), elapsed.inner_text())
    shot(page, "job-task-live")
    # Both move while the page stays put: progress from `tasks` events, elapsed between them.
    wait_for(
        lambda: (
            float(progress.get_attribute("value") or 0) > before[0] + 10
            and elapsed.inner_text() != before[1]
        ),
        timeout=20,
        what="the row's progress and elapsed time to move",
    )
    assert re.fullmatch(r"\d+(\.\d)? s", elapsed.inner_text())
    assert not_reloaded(page)
    with RpcClient(farm["master"].port) as rpc:
        rpc.call("jobs.cancel", job_id=job_id)
    assert page.errors == []


def test_a_pour_appears_on_the_taps_page(page: Any, farm: dict[str, Any]) -> None:
    port = farm["master"].port
    with RpcClient(port) as rpc:
        rpc.call("taps.configure", tap="tap1", meter="keg1.flow0", idle_s=1)
        rpc.call("kegs.start", tap="tap1", beverage="Pale Ale", volume_ml=19500)
    page.goto(page.base + "/taps")
    mark_page(page)
    page.locator('article[data-tap="tap1"]').wait_for()
    with agent(port, "keg1", role="hardware") as hardware:
        hardware.call("meter.update", meter="flow0", ticks=1000)  # the baseline
        for ticks in range(1100, 2000, 100):
            hardware.call("meter.update", meter="flow0", ticks=ticks)
        flow = page.locator('p[data-flow="tap1"]')
        sync_api.expect(flow).to_contain_text("pouring")
        assert "ml" in flow.inner_text()
        shot(page, "taps-pouring")
        # No more ticks: after idle_s the master ends the flow and records the pour.
        pour = page.locator("#pours tr[data-pour]")
        pour.first.wait_for(timeout=15_000)
        for value in (4.5, 4.7, 4.6):  # a keg fridge's thermometer, for the Readings page
            hardware.call("reading", sensor="fridge", kind="temperature", value=value, unit="C")
    text = pour.first.inner_text()
    assert "tap1" in text and "guest" in text and "330 ml" in text
    assert not_reloaded(page)
    shot(page, "taps-poured")
    page.goto(page.base + "/people")
    page.locator("#by-user tr", has_text="guest").wait_for()
    shot(page, "people-after-pour")
    page.goto(page.base + "/readings")
    sync_api.expect(page.locator('article[data-sensor="fridge"] .latest')).to_contain_text("C")
    shot(page, "readings-fridge")
    assert page.errors == []


# A renderer's stand-in: waits a little, then writes frame N into folder F as a 1280x720 PNG.
RENDER_FRAME = (
    "import os, sys, time; from PIL import Image, ImageDraw; f = int(sys.argv[1]); "
    "time.sleep(0.8); os.makedirs(sys.argv[2], exist_ok=True); "
    "im = Image.linear_gradient('L').resize((1280, 720)).convert('RGB'); "
    "im.paste((40 * f % 256, 90, 200 - 30 * f), (0, 0, 1280, 240)); "
    "ImageDraw.Draw(im).text((60, 60), 'frame %d' % f, fill='white', font_size=120); "
    "im.save('%s/%04d.png' % (sys.argv[2], f))"
)


def test_previews_show_live_on_the_job_page_and_the_jobs_list(
    page: Any, farm: dict[str, Any]
) -> None:
    with RpcClient(farm["master"].port) as rpc:
        argv = [sys.executable, "-c", RENDER_FRAME, "{frame}"]
        # One more job first, so the jobs list shows two previews.
        title = [*argv, "title"]
        rpc.call("jobs.submit", name="render-title", argv=title, frames="4", outputs="title/*.png")
        job_id = rpc.call(
            "jobs.submit",
            name="render-shots",
            argv=[*argv, "shots"],
            frames="1-3",
            outputs="shots/*.png",
        )["job_id"]
    page.goto(f"{page.base}/jobs/{job_id}")
    page.wait_for_selector('body[data-ready="1"]')
    mark_page(page)
    image = page.locator("#job-preview img")
    image.wait_for(state="visible", timeout=30_000)
    first = image.get_attribute("data-version")
    # Frames land one by one: the image follows the `previews` events, the page stays put.
    wait_for(lambda: image.get_attribute("data-version") != first, 30, what="a newer frame")
    with RpcClient(farm["master"].port) as rpc:
        # The last frame's preview comes just after its task's result.
        wait_for(lambda: rpc.call("jobs.preview", job_id=job_id)["frame"] == 3, 30)
    sync_api.expect(page.locator("#job-preview figcaption")).to_contain_text("frame 3")
    assert image.evaluate("i => i.complete && i.naturalWidth") == 640
    assert not_reloaded(page)
    shot(page, "job-preview")
    page.goto(page.base + "/jobs")
    thumb = page.locator(f'#jobs tr[data-id="{job_id}"] img.thumb')
    thumb.wait_for()
    wait_for(lambda: thumb.evaluate("i => i.complete && i.naturalWidth") == 640, 10)
    shot(page, "jobs-previews")
    page.goto(page.base + "/")
    tile = page.locator("#last-rendered img")
    tile.wait_for(state="visible")
    assert tile.evaluate("i => i.closest('a').getAttribute('href')") == f"/jobs/{job_id}"
    shot(page, "overview-last-rendered")
    assert page.errors == []


def test_a_banner_while_the_master_is_away(page: Any, farm: dict[str, Any]) -> None:
    page.goto(page.base + "/jobs")
    page.wait_for_selector('body[data-ready="1"]')
    mark_page(page)
    old = farm["master"]
    old.stop()
    banner = page.locator("#banner")
    sync_api.expect(banner).to_contain_text("master is unreachable")
    shot(page, "banner-master-away")
    farm["master"] = MasterProcess(old.data_dir, "--port", str(old.port), "--heartbeat-s", "1")
    sync_api.expect(banner).to_be_hidden(timeout=30_000)  # the dashboard reconnected by itself
    with RpcClient(old.port) as rpc:
        job_id = rpc.call("jobs.submit", name="after-restart", argv=["true"])["job_id"]
    sync_api.expect(page.locator(f'#jobs tr[data-id="{job_id}"]')).to_be_visible()
    assert not_reloaded(page) and page.errors == []
