"""Webhooks in process (MasterKit, the fake clock, a fake POST): the methods and the console
command, who may call them, the events the farm and the registry emit, the retry schedule over a
day, the bounded queue, and the delivery log surviving a restart."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import orjson
import pytest

from farmhand.master.session import Session
from farmhand.master.webhooks import sender
from farmhand.master.webhooks.dispatcher import GIVE_UP_AFTER_S, WebhookDispatcher, retry_delay
from farmhand.master.webhooks.sender import Outcome
from models.webhookstore import WebhookStore
from protocol.errors import ErrorCode, RpcError
from tests.unit.farmkit import MasterKit

pytestmark = [pytest.mark.fast, pytest.mark.timeout(30)]


class FakeEndpoint:
    """Stands in for `sender.post`: records every POST, answers with `statuses` in turn."""

    def __init__(self, *statuses: int | None) -> None:
        self.statuses = list(statuses)
        self.posts: list[tuple[str, dict[str, str], bytes]] = []

    def __call__(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        self.posts.append((url, headers, body))
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if status is None:
            return Outcome(None, 1.5, "ConnectionRefusedError: [Errno 111] Connection refused")
        return Outcome(status, 2.0, None if 200 <= status < 300 else f"HTTP {status}")


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[MasterKit]:
    master_kit = MasterKit(tmp_path)
    yield master_kit
    master_kit.close()


def endpoint(kit: MasterKit, *statuses: int | None) -> FakeEndpoint:
    fake = FakeEndpoint(*statuses)
    kit.services.webhooks.post = fake
    # Subscribed as app.Master.start does, without its loop greenlet: tests call run_once.
    kit.services.events.subscribe(kit.services.webhooks, ["notices"])
    return fake


def test_create_list_delete_through_the_methods(kit: MasterKit) -> None:
    created = kit.call(
        "webhooks.create", url="http://127.0.0.1:9/hook", events=["job.failed"], secret="s"
    )
    assert (created["id"], created["url"], created["events"]) == (
        1,
        "http://127.0.0.1:9/hook",
        ["job.failed"],
    )
    assert created["has_secret"] is True and "secret" not in created
    listed = kit.call("webhooks.list")["webhooks"]
    assert [view["id"] for view in listed] == [1]
    assert listed[0]["delivered"] == 0 and listed[0]["last_status"] is None
    assert kit.call("webhooks.delete", id=1) == {}
    assert kit.call("webhooks.list") == {"webhooks": []}
    with pytest.raises(RpcError) as missing:
        kit.call("webhooks.delete", id=1)
    assert (missing.value.code, missing.value.reason) == (ErrorCode.NOT_FOUND, "no_such_webhook")
    # Audited like every other write, the secret redacted.
    kit.services.audit.flush()
    entries = kit.services.audit.entries(10, None)
    methods = [entry["method"] for entry in entries]
    assert methods[:3] == ["webhooks.delete", "webhooks.delete", "webhooks.create"]
    assert entries[2]["params"]["secret"] == "[redacted]"


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"url": "ftp://x/y", "events": ["pour"]}, "bad_url"),
        ({"url": "http://x:99999/", "events": ["pour"]}, "bad_url"),
        ({"url": "http://x/a b", "events": ["pour"]}, "bad_url"),
        ({"url": "http://x\x00y/", "events": ["pour"]}, "bad_url"),
        ({"url": "http://[::1/", "events": ["pour"]}, "bad_url"),
        ({"url": "http://x/", "events": []}, "no_events"),
        ({"url": "http://x/", "events": ["job.exploded"]}, "unknown_event"),
    ],
)
def test_bad_webhooks_are_refused_and_nothing_is_stored(
    kit: MasterKit, params: dict[str, object], reason: str
) -> None:
    with pytest.raises(RpcError) as refused:
        kit.call("webhooks.create", **params)
    assert (refused.value.code, refused.value.reason) == (ErrorCode.INVALID_PARAMS, reason)
    assert kit.call("webhooks.list") == {"webhooks": []}
    assert WebhookStore(kit.services.store).load_webhooks() == []


def test_only_admins_may_see_or_change_webhooks(kit: MasterKit) -> None:
    key = kit.call("keys.create", role="api", name="viewer", scope="read")["key"]
    reader = Session("10.0.0.5", 5, "rpc", trusted=False)
    kit.call("hello", reader, role="api", name="viewer", key=key, proto=1)
    for method, params in (
        ("webhooks.list", {}),
        ("webhooks.create", {"url": "http://x/", "events": ["*"]}),
        ("webhooks.delete", {"id": 1}),
    ):
        with pytest.raises(RpcError) as refused:
            kit.call(method, reader, **params)
        assert refused.value.code == ErrorCode.UNAUTHORIZED, method


def test_the_console_command_creates_lists_and_deletes(kit: MasterKit) -> None:
    assert kit.console("webhooks") == "no webhooks"
    text = kit.console("webhooks create http://127.0.0.1:9/h job.completed,job.failed secret=x")
    assert text == "created webhook 1: http://127.0.0.1:9/h for job.completed, job.failed (signed)"
    listing = kit.console("webhooks list")
    assert "http://127.0.0.1:9/h" in listing and "job.completed,job.failed" in listing
    assert listing.endswith("1 webhook")
    assert "unknown event 'nope'" in kit.console("webhooks create http://x/ nope")
    assert "usage: webhooks" in kit.console("webhooks frobnicate")
    assert "is not a webhook id" in kit.console("webhooks delete ¹")
    assert kit.console("webhooks delete 1") == "deleted webhook 1"
    assert kit.console("webhooks") == "no webhooks"


def test_a_canceled_job_is_posted_signed_with_the_jobs_get_view(kit: MasterKit) -> None:
    fake = endpoint(kit, 200)
    kit.call("webhooks.create", url="http://h/one", events=["job.canceled"], secret="k3y")
    kit.call("webhooks.create", url="http://h/all", events=["*"])
    kit.call("webhooks.create", url="http://h/other", events=["pour"])
    kit.call("jobs.submit", name="shot", argv=["true"], frames="1-2")
    kit.call("jobs.cancel", job_id=1)
    assert kit.services.webhooks.run_once(kit.clock.wall()) == 2
    by_url = {url: (headers, body) for url, headers, body in fake.posts}
    assert set(by_url) == {"http://h/one", "http://h/all"}
    headers, body = by_url["http://h/one"]
    assert headers["X-Farmhand-Event"] == "job.canceled"
    assert headers["X-Farmhand-Signature"] == sender.signature("k3y", body)
    assert "X-Farmhand-Signature" not in by_url["http://h/all"][0]
    sent = orjson.loads(body)
    assert set(sent) == {"event", "time", "data"} and sent["event"] == "job.canceled"
    view = kit.call("jobs.get", job_id=1)
    assert {key: sent["data"][key] for key in ("id", "name", "status")} == {
        "id": 1,
        "name": "shot",
        "status": "canceled",
    }
    assert sent["data"]["blocked"] is None and sent["data"]["status"] == view["status"]
    listed = kit.call("webhooks.list")["webhooks"][0]
    assert (listed["delivered"], listed["last_status"], listed["queued"]) == (1, 200, 0)
    assert listed["recent"][0]["state"] == "delivered"


def test_a_completed_job_and_an_offline_worker_are_events(kit: MasterKit) -> None:
    fake = endpoint(kit, 204)
    kit.call("webhooks.create", url="http://h/", events=["job.completed", "client.offline"])
    worker, peer = kit.agent("worker", "w1", info={"slots": 1})
    kit.call("jobs.submit", name="one", argv=["true"], frames="1")
    kit.dispatch()
    (order,) = peer.take()
    kit.call("task.finished", worker, attempt=order["attempt"], exit_code=0)
    client = kit.services.registry.get("w1")
    assert client is not None
    kit.services.registry.disconnect(client, client.connection, kit.clock.wall(), "test")
    kit.services.webhooks.run_once(kit.clock.wall())
    events = [orjson.loads(body) for _, _, body in fake.posts]
    assert [event["event"] for event in events] == ["job.completed", "client.offline"]
    assert events[0]["data"]["status"] == "completed"
    offline = events[1]["data"]
    assert (offline["name"], offline["reason"], offline["status"]) == ("w1", "test", "offline")


def test_a_failing_endpoint_is_retried_with_backoff_for_a_day_then_given_up(
    kit: MasterKit,
) -> None:
    fake = endpoint(kit, None)
    hooks = kit.services.webhooks
    kit.call("webhooks.create", url="http://dead/", events=["job.canceled"])
    kit.call("jobs.submit", name="x", argv=["true"], frames="1")
    kit.call("jobs.cancel", job_id=1)
    began = kit.clock.wall()
    tries = [began]
    assert hooks.run_once(kit.clock.wall()) == 1
    while True:
        view = kit.call("webhooks.list")["webhooks"][0]
        pending = view["recent"][0]
        if pending["state"] != "pending":
            break
        # Nothing is sent before the retry is due …
        kit.clock.advance(retry_delay(pending["attempts"]) - 0.5)
        assert hooks.run_once(kit.clock.wall()) == 0
        # … and it is, once it is.
        kit.clock.advance(0.5)
        assert hooks.run_once(kit.clock.wall()) == 1
        tries.append(kit.clock.wall())
    gaps = [round(b - a) for a, b in pairwise(tries)]
    assert gaps[:5] == [10, 20, 40, 80, 160] and max(gaps) == 3600
    assert tries[-1] - began <= GIVE_UP_AFTER_S
    assert len(fake.posts) == len(tries)
    assert (pending["state"], view["failed"], view["delivered"]) == ("failed", 1, 0)
    assert view["last_status"] is None and "Connection refused" in view["last_error"]
    kit.clock.advance(7200)
    assert hooks.run_once(kit.clock.wall()) == 0  # given up for good


def test_a_dead_endpoint_queue_is_bounded_dropping_the_oldest(kit: MasterKit) -> None:
    endpoint(kit, None)
    hooks = kit.services.webhooks
    hooks.queue_limit = 5
    kit.call("webhooks.create", url="http://dead/", events=["job.canceled"])
    for job_id in range(1, 13):
        kit.call("jobs.submit", name=f"j{job_id}", argv=["true"], frames="1")
        kit.call("jobs.cancel", job_id=job_id)
    assert hooks.fan_out() == 12
    view = kit.call("webhooks.list")["webhooks"][0]
    assert (view["queued"], view["dropped"]) == (5, 7)
    hook = hooks.get(1)
    assert [orjson.loads(d.body)["data"]["id"] for d in hook.queue] == [8, 9, 10, 11, 12]
    # What the emitting call pays is one append to the intake, itself bounded.
    hooks.intake_limit = 3
    for job_id in range(13, 18):
        kit.call("jobs.submit", name=f"j{job_id}", argv=["true"], frames="1")
        kit.call("jobs.cancel", job_id=job_id)
    assert hooks.intake_dropped == 2
    assert hooks.fan_out() == 3
    assert [orjson.loads(d.body)["data"]["id"] for d in hook.queue] == [11, 12, 15, 16, 17]


def test_retries_survive_a_restart(kit: MasterKit) -> None:
    endpoint(kit, 500)
    hooks = kit.services.webhooks
    kit.call("webhooks.create", url="http://flaky/", events=["job.canceled"], secret="s")
    kit.call("jobs.submit", name="x", argv=["true"], frames="1")
    kit.call("jobs.cancel", job_id=1)
    hooks.run_once(kit.clock.wall())
    hooks.flush()
    reloaded = WebhookDispatcher(
        WebhookStore(kit.services.store),
        kit.services.events,
        kit.clock.wall,
        post=FakeEndpoint(200),
    )
    reloaded.load()
    hook = reloaded.get(1)
    (delivery,) = hook.queue
    assert (delivery.state, delivery.attempts, delivery.status_code) == ("pending", 1, 500)
    assert hook.rec.secret == "s" and hook.rec.last_status == 500
    kit.clock.advance(10)
    assert reloaded.run_once(kit.clock.wall()) == 1
    reloaded.flush()
    (stored,) = WebhookStore(kit.services.store).recent(1, 10)
    assert (stored.state, stored.attempts, stored.status_code) == ("delivered", 2, 200)
    assert orjson.loads(stored.body)["event"] == "job.canceled"


def test_the_dashboard_offers_every_event_a_webhook_may_take() -> None:
    from dashboard.routes.pages import WEBHOOK_EVENTS
    from farmhand.master.webhooks.dispatcher import EVENT_NAMES

    assert WEBHOOK_EVENTS == EVENT_NAMES


def test_the_delivery_queue_gives_the_due_ones_in_order_and_sweeps_stale_entries() -> None:
    from farmhand.master.webhooks.dispatcher import DeliveryQueue
    from models.webhookstore import DeliveryRecord

    def delivery(number: int, due: float) -> DeliveryRecord:
        return DeliveryRecord(
            number, 1, "pour", 0.0, b"{}", "pending", 0, due, None, None, None, 0.0
        )

    queue = DeliveryQueue()
    for number, due in ((1, 5.0), (2, 0.0), (3, 0.0), (4, 9.0)):
        queue.put(delivery(number, due))
    assert queue.earliest() == 0.0
    taken = [queue.take_due(1.0), queue.take_due(1.0), queue.take_due(1.0)]
    assert [d.id if d else None for d in taken] == [2, 3, None]
    assert queue.pop_oldest().id == 1  # dropped: its heap entry is skipped from now on
    assert queue.earliest() == 9.0 and [d.id for d in queue] == [4]
    # A dead endpoint: deliveries waiting for far-off retries are dropped by the thousand;
    # their heap entries are swept, not kept until their time comes.
    for number in range(10, 1010):
        queue.put(delivery(number, 3600.0 + number))
        queue.pop_oldest()
    assert [d.id for d in queue] == [1009] and len(queue._due) <= 2 * len(queue) + 64 + 1
    assert queue.earliest() == 3600.0 + 1009
