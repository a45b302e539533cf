"""The webhook store on SQLite and PostgreSQL: webhooks round-trip, the deliveries awaiting a
retry come back, a flush is one upsert of counters and deliveries, delete takes the log too,
and finished deliveries are pruned by age (pending ones never)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from models.store import Store
from models.webhookstore import DeliveryRecord, WebhookRecord, WebhookStore

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def hooks(database_url: str, tmp_path: Path) -> Iterator[WebhookStore]:
    store = Store(database_url, tmp_path)
    store.open()
    yield WebhookStore(store)
    store.close()


def delivery(number: int, webhook_id: int, state: str, updated: float) -> DeliveryRecord:
    body = b'{"event":"pour","time":"2026-12-02T17:00:00.000Z","data":{"ml":330,"who":"\xc3\xa9"}}'
    return DeliveryRecord(
        number, webhook_id, "pour", 100.0, body, state, 1, 200.0 if state == "pending" else None,
        503, 12.5, "HTTP 503 Service Unavailable", updated,
    )  # fmt: skip


def test_webhooks_and_their_deliveries_round_trip(hooks: WebhookStore) -> None:
    first = WebhookRecord(1, "https://h.example/a", ["job.failed", "pour"], "s3cret", 50.0)
    second = WebhookRecord(2, "http://127.0.0.1:9/b", ["*"], None, 60.0)
    hooks.save_webhook(first)
    hooks.save_webhook(second)
    first.delivered, first.last_status, first.last_latency_ms = 7, 503, 12.5
    pending = delivery(1, 1, "pending", 150.0)
    hooks.save_changes([first], [pending, delivery(2, 1, "delivered", 150.0)])
    pending.attempts, pending.state = 2, "failed"
    hooks.save_changes([], [pending, delivery(3, 2, "pending", 150.0)])
    assert hooks.load_webhooks() == [first, second]
    assert [(d.id, d.state) for d in hooks.load_pending()] == [(3, "pending")]
    assert hooks.max_delivery_id() == 3
    (newest, *_) = hooks.recent(1, 10)
    assert (newest.id, newest.attempts, newest.state) == (2, 1, "delivered")
    assert newest.body == delivery(2, 1, "delivered", 0.0).body
    assert hooks.prune(before=160.0) == 2  # the delivered and the failed one; pending stays
    assert [d.id for d in hooks.recent(2, 10)] == [3]
    hooks.delete_webhook(2)
    assert hooks.load_webhooks() == [first] and hooks.load_pending() == []
