"""Finding 9.1 in a real browser: a page in Chromium fetches the master's port the way an
attacker's page would (`no-cors` POST and a WebSocket). Nothing may run: no job is created and
the master logs the refusal. Skipped only when chromium is missing outside CI.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import MasterProcess, RpcClient, wait_for

CHROMIUM = Path(os.environ.get("FARMHAND_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
from playwright import sync_api  # noqa: E402

pytestmark = pytest.mark.timeout(60)

ATTACK_PAGE = """<!doctype html><meta charset="utf-8"><title>cat pictures</title>
<script>
const target = "http://127.0.0.1:{port}/";
async function attack() {{
  const body = "\\nsubmit pwned -- touch {marker}\\n";
  try {{ await fetch(target, {{mode: "no-cors", method: "POST", body}}); }} catch (e) {{}}
  try {{ await fetch(target + "?x", {{mode: "no-cors", method: "POST", body,
                 headers: {{"Content-Type": "text/plain"}}}}); }} catch (e) {{}}
  await new Promise((done) => {{
    const ws = new WebSocket("ws://127.0.0.1:{port}/");
    ws.onopen = () => {{ ws.send("submit pwned2 -- true"); done(); }};
    ws.onerror = ws.onclose = () => done();
  }});
  document.title = "done";
}}
attack();
</script>"""


@pytest.fixture
def attack_site(master: MasterProcess, tmp_path: Path) -> Iterator[str]:
    page = ATTACK_PAGE.format(port=master.port, marker=tmp_path / "PWNED").encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_a_page_in_chromium_cannot_submit_a_job(master: MasterProcess, attack_site: str) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"], headless=True
        )
        try:
            tab = browser.new_page()
            tab.goto(attack_site)
            tab.wait_for_function("document.title === 'done'", timeout=20_000)
        finally:
            browser.close()
    with RpcClient(master.port) as rpc:
        assert rpc.call("jobs.list")["total"] == 0
    wait_for(lambda: "HTTP request" in master.log(), what="the refusal in the log")
