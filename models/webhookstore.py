"""Storage of webhooks and their delivery log. The master keeps both in memory and writes behind:
a webhook row when it is created (before `webhooks.create` replies) or deleted, and every flush
of the dispatcher upserts the deliveries and webhook counters changed since the last one, in one
transaction. Runs in the Store's DB thread (`Store.call`) with fixed SQL from models/schema.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from itertools import starmap
from typing import Any

import orjson

from models import schema
from models.store import Store
from models.tables import Table, record_fields

WEBHOOK = Table.of(schema.Webhook)
DELIVERY = Table.of(schema.WebhookDelivery)


@dataclass(slots=True)
class WebhookRecord:
    id: int
    url: str
    events: list[str]
    secret: str | None
    created: float
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    last_time: float | None = None
    last_status: int | None = None
    last_latency_ms: float | None = None
    last_error: str | None = None


@dataclass(slots=True)
class DeliveryRecord:
    id: int
    webhook_id: int
    event: str
    created: float
    body: bytes
    state: str  # pending, delivered, failed, dropped
    attempts: int
    next_try: float | None
    status_code: int | None
    latency_ms: float | None
    error: str | None
    updated: float


record_fields(WebhookRecord, WEBHOOK.columns)
record_fields(DeliveryRecord, DELIVERY.columns)


def _webhook_row(record: WebhookRecord) -> tuple[Any, ...]:
    row = list(astuple(record))
    row[2] = orjson.dumps(record.events).decode()
    return tuple(row)


def _delivery_row(record: DeliveryRecord) -> tuple[Any, ...]:
    row = list(astuple(record))
    row[4] = record.body.decode()
    return tuple(row)


class WebhookStore:
    def __init__(self, store: Store) -> None:
        self._store = store
        p = store.db.param
        self._upsert_webhook = WEBHOOK.upsert(("id",), WEBHOOK.values(p))
        self._upsert_delivery = DELIVERY.upsert(("id",), DELIVERY.values(p))
        self._select_webhooks = WEBHOOK.select(' ORDER BY "id"')
        self._select_pending = DELIVERY.select(f' WHERE "state" = {p} ORDER BY "id"')
        self._select_recent = DELIVERY.select(
            f' WHERE "webhook_id" = {p} ORDER BY "id" DESC LIMIT {p}'
        )
        self._max_delivery = 'SELECT MAX("id") FROM "webhook_delivery"'
        self._delete_webhook = f'DELETE FROM "webhook" WHERE "id" = {p}'
        self._delete_deliveries = f'DELETE FROM "webhook_delivery" WHERE "webhook_id" = {p}'
        self._prune = f'DELETE FROM "webhook_delivery" WHERE "state" <> {p} AND "updated" < {p}'

    def load_webhooks(self) -> list[WebhookRecord]:
        return self._store.read(self._do_load_webhooks)

    def load_pending(self) -> list[DeliveryRecord]:
        return self._store.read(self._do_select, self._select_pending, ("pending",))

    def recent(self, webhook_id: int, limit: int) -> list[DeliveryRecord]:
        """The webhook's newest deliveries, newest first."""
        return self._store.read(self._do_select, self._select_recent, (webhook_id, limit))

    def max_delivery_id(self) -> int:
        return self._store.read(self._do_max_delivery)

    def save_webhook(self, record: WebhookRecord) -> None:
        self._store.call(self._store.db.execute_sql, self._upsert_webhook, _webhook_row(record))

    def delete_webhook(self, webhook_id: int) -> None:
        """The webhook and its whole delivery log."""
        self._store.call(self._do_delete, webhook_id)

    def save_changes(
        self, webhooks: Sequence[WebhookRecord], deliveries: Sequence[DeliveryRecord]
    ) -> None:
        """Counters and delivery rows changed since the last flush, in one transaction."""
        if webhooks or deliveries:
            self._store.call(
                self._do_save,
                [_webhook_row(record) for record in webhooks],
                [_delivery_row(record) for record in deliveries],
            )

    def prune(self, before: float) -> int:
        """Delete the finished deliveries last changed before `before`; return how many."""
        return self._store.call(self._do_prune, before)

    # -- DB thread -------------------------------------------------------------------------------

    def _do_load_webhooks(self) -> list[WebhookRecord]:
        rows = self._store.db.execute_sql(self._select_webhooks).fetchall()
        records = list(starmap(WebhookRecord, rows))
        for record in records:
            record.events = orjson.loads(record.events)  # type: ignore[arg-type]
        return records

    def _do_select(self, sql: str, params: tuple[Any, ...]) -> list[DeliveryRecord]:
        rows = self._store.db.execute_sql(sql, params).fetchall()
        records = list(starmap(DeliveryRecord, rows))
        for record in records:
            record.body = str(record.body).encode()
        return records

    def _do_max_delivery(self) -> int:
        value = self._store.db.execute_sql(self._max_delivery).fetchone()[0]
        return int(value or 0)

    def _do_delete(self, webhook_id: int) -> None:
        with self._store.transaction() as cursor:
            cursor.execute(self._delete_deliveries, (webhook_id,))
            cursor.execute(self._delete_webhook, (webhook_id,))

    def _do_save(self, webhooks: list[tuple[Any, ...]], deliveries: list[tuple[Any, ...]]) -> None:
        with self._store.transaction() as cursor:
            if webhooks:
                cursor.executemany(self._upsert_webhook, webhooks)
            if deliveries:
                cursor.executemany(self._upsert_delivery, deliveries)

    def _do_prune(self, before: float) -> int:
        return int(self._store.db.execute_sql(self._prune, ("pending", before)).rowcount)
