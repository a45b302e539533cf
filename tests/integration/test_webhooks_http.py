"""Webhooks through a real master process to real HTTP servers on 127.0.0.1 (http.server in a
thread): signed POSTs whose HMAC the receiver checks, a failing endpoint retried for real, a dead
endpoint that keeps the hub answering, and the `farmhand webhooks` command."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import MasterProcess, Program, RpcClient, farmhand, wait_for
from tests.tlscerts import FarmCa, make_farm_ca
from tests.webhookreceiver import Receiver

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def hooked_master(tmp_path: Path) -> Iterator[MasterProcess]:
    """A master whose failed deliveries are retried after 0.2 s (then 0.4 s, …)."""
    config = tmp_path / "master.toml"
    config.write_text("webhook_first_retry_s = 0.2\n")
    process = MasterProcess(tmp_path / "var", "--config", str(config))
    yield process
    process.stop()


def cancel_a_job(api: RpcClient, name: str) -> int:
    job_id = int(api.call("jobs.submit", name=name, argv=["true"], frames="1")["job_id"])
    api.call("jobs.cancel", job_id=job_id)
    return job_id


def test_signed_posts_reach_a_real_server_and_a_failing_one_is_retried(
    hooked_master: MasterProcess,
) -> None:
    good = Receiver("s3cret")
    flaky = Receiver(None, 503, 200)
    try:
        with RpcClient(hooked_master.port) as api:
            api.call("webhooks.create", url=good.url, events=["job.canceled"], secret="s3cret")
            api.call("webhooks.create", url=flaky.url, events=["*"])
            job_id = cancel_a_job(api, "signed")
            wait_for(lambda: good.posts, what="the signed POST")
            (post,) = good.posts
            assert post["verified"] and post["event"] == "job.canceled"
            assert post["body"]["event"] == "job.canceled"
            assert post["body"]["data"]["id"] == job_id
            assert post["body"]["data"]["status"] == "canceled"
            assert post["body"]["time"].endswith("Z")
            # The flaky endpoint answered 503 first: the master tried again and got 200.
            wait_for(lambda: len(flaky.posts) >= 2, what="the retry")
            assert [p["answered"] for p in flaky.posts] == [503, 200]
            assert flaky.posts[0]["body"] == flaky.posts[1]["body"]

            def logged() -> dict[str, Any] | None:
                views = api.call("webhooks.list")["webhooks"]
                return views[1] if views[1]["delivered"] == 1 else None

            view = wait_for(logged, what="the delivery log")
            assert view["last_status"] == 200 and view["last_error"] is None
            (delivery,) = view["recent"]
            assert (delivery["state"], delivery["attempts"]) == ("delivered", 2)
    finally:
        good.close()
        flaky.close()


def test_a_dead_endpoint_does_not_block_the_hub(hooked_master: MasterProcess) -> None:
    # A listening socket that never accepts: connections complete (backlog) and nobody answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(100)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    try:
        with RpcClient(hooked_master.port) as api:
            for port in (silent.getsockname()[1], refused.getsockname()[1]):
                api.call("webhooks.create", url=f"http://127.0.0.1:{port}/x", events=["*"])
            for index in range(20):
                cancel_a_job(api, f"j{index}")
            # The silent endpoint holds a delivery greenlet waiting for its answer …
            wait_for(
                lambda: api.call("webhooks.list")["webhooks"][1]["last_error"],
                what="the refused endpoint's first failure",
            )
            # … and the hub still answers and takes jobs.
            assert api.call("ping") is not None
            assert api.call("jobs.submit", name="after", argv=["true"], frames="1")["tasks"] == 1
            views = api.call("webhooks.list")["webhooks"]
            assert views[0]["delivered"] == 0
            assert "refused" in views[1]["last_error"].lower()
    finally:
        silent.close()
        refused.close()


def test_the_farmhand_command_manages_webhooks(master: MasterProcess) -> None:
    created = farmhand(
        "--json",
        "webhooks",
        "create",
        "http://127.0.0.1:9/h",
        "--events",
        "job.completed,job.failed",
        "--secret",
        "x",
        master=master,
    )
    assert created.returncode == 0, created.stderr
    view = json.loads(created.stdout)
    assert (view["id"], view["events"], view["has_secret"]) == (
        1,
        ["job.completed", "job.failed"],
        True,
    )
    listed = farmhand("webhooks", master=master)
    assert "http://127.0.0.1:9/h" in listed.stdout and "1 webhook" in listed.stdout
    bad = farmhand("webhooks", "create", "http://x/", "--events", "nope", master=master)
    assert bad.returncode == 1 and "unknown event 'nope'" in bad.stderr
    superscript = farmhand("webhooks", "delete", "¹", master=master)
    assert superscript.returncode == 2 and "positive whole number" in superscript.stderr
    assert farmhand("webhooks", "delete", "1", master=master).returncode == 0
    assert "no webhooks" in farmhand("webhooks", master=master).stdout


def test_the_relay_recipe_turns_events_into_slack_text(
    tmp_path: Path, hooked_master: MasterProcess
) -> None:
    """contrib/webhook_relay.py (docs/webhooks.md) as a real process between the master and a
    stand-in for Slack's incoming webhook, which wants `{"text": …}`."""
    slack = Receiver(None)
    relay = Program(
        "contrib/webhook_relay.py",
        *("--listen", "127.0.0.1:0", "--secret", "relay-secret", "--slack", slack.url),
        log_path=tmp_path / "relay.log",
    )
    try:
        assert relay.proc.stdout is not None
        url = relay.proc.stdout.readline().decode().split()[-1]
        with RpcClient(hooked_master.port) as api:
            api.call("webhooks.create", url=url, events=["job.canceled"], secret="relay-secret")
            job_id = cancel_a_job(api, "shot-010")
            wait_for(lambda: slack.posts, what="the relayed message")
            assert slack.posts[0]["body"] == {"text": f"farmhand: job {job_id} (shot-010) canceled"}
            view = wait_for(
                lambda: (
                    api.call("webhooks.list")["webhooks"][0]["delivered"]
                    and api.call("webhooks.list")["webhooks"][0]
                )
            )
            assert view["last_status"] == 200
            # A wrong secret is refused by the relay: farmhand logs the 401 and retries.
            api.call("webhooks.create", url=url, events=["job.canceled"], secret="wrong")
            cancel_a_job(api, "bad")
            wait_for(
                lambda: api.call("webhooks.list")["webhooks"][1]["last_status"] == 401,
                what="the relay's 401",
            )
            wait_for(lambda: len(slack.posts) == 2, what="job 2 through the right secret")
            texts = [post["body"]["text"] for post in slack.posts]
            assert texts == [
                f"farmhand: job {job_id} (shot-010) canceled",
                "farmhand: job 2 (bad) canceled",
            ]
    finally:
        relay.stop()
        slack.close()


def test_deliveries_reuse_a_keep_alive_connection(hooked_master: MasterProcess) -> None:
    receiver = Receiver("k", keep_alive=True)
    try:
        with RpcClient(hooked_master.port) as api:
            api.call("webhooks.create", url=receiver.url, events=["job.canceled"], secret="k")
            for index in range(5):
                cancel_a_job(api, f"k{index}")
                wait_for(lambda n=index: len(receiver.posts) > n, what=f"POST {index + 1}")
        assert all(post["verified"] for post in receiver.posts)
        assert len(receiver.connections) == 1
    finally:
        receiver.close()


def test_https_endpoints_are_verified(tmp_path: Path) -> None:
    """https:// goes through gevent's ssl with the system's trust store (here SSL_CERT_FILE, the
    farm CA): a certificate it trusts gets the POST, one from another CA a TLS error."""
    trusted_ca = make_farm_ca(tmp_path / "trusted", "127.0.0.1")
    other_ca = make_farm_ca(tmp_path / "other", "127.0.0.1")

    def server_context(ca: FarmCa) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ca.cert, ca.key)
        return context

    trusted = Receiver("t", tls=server_context(trusted_ca))
    untrusted = Receiver("t", tls=server_context(other_ca))
    config = tmp_path / "master.toml"
    config.write_text("webhook_first_retry_s = 30\n")
    master = MasterProcess(
        tmp_path / "var", "--config", str(config), env={"SSL_CERT_FILE": str(trusted_ca.ca)}
    )
    try:
        with RpcClient(master.port) as api:
            for receiver in (trusted, untrusted):
                api.call("webhooks.create", url=receiver.url, events=["job.canceled"], secret="t")
            cancel_a_job(api, "tls")
            wait_for(lambda: trusted.posts, what="the POST over TLS")
            assert trusted.posts[0]["verified"] and trusted.url.startswith("https://")

            def failed() -> str | None:
                return api.call("webhooks.list")["webhooks"][1]["last_error"]  # type: ignore[no-any-return]

            assert "CERTIFICATE_VERIFY_FAILED" in wait_for(failed, what="the TLS error")
            assert untrusted.posts == []
    finally:
        master.stop()
        trusted.close()
        untrusted.close()
