"""The webhook dispatcher: the webhooks, their queues and delivery log, and the greenlets that
POST farm events to them.

Theory of operation. The dispatcher is an in-process subscriber of the `notices` topic: the hub
hands it each event's bytes (`send_bytes`), and all the emitting call pays is one append to a
bounded intake (INTAKE_LIMIT, drop-oldest, counted). The loop greenlet then fans each event out
(`fan_out`): the body is built once and a delivery appended to the queue of every webhook that wants
the event. Each queue is bounded (QUEUE_LIMIT): when it is full the oldest waiting delivery is
dropped and counted, so a dead endpoint cannot grow memory. The loop hands webhooks with a due
delivery to a pool of POOL_SIZE delivery greenlets, one webhook per greenlet at a time (a slow
endpoint holds one greenlet, never the hub or the others). A failed attempt is retried after 10 s,
20 s, 40 s … at most an hour apart (`retry_delay`), until a day after the event; then the delivery
is given up and logged. The time is passed in (`wall`), so tests walk the schedule with a fake clock
and `run_once(now)`.

Persistence: webhooks are stored when created; their counters and last outcome, and the row of
every delivery whose first attempt failed, are written behind (every FLUSH_S, one transaction)
after each attempt. So deliveries waiting for a retry survive a restart; a delivery that went
through at once is counted but not stored (it stays in the in-memory log, `recent`); events not
yet attempted when the master stops are lost.
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gevent
import orjson
from gevent.event import Event
from gevent.pool import Pool

from models.health import DatabaseUnavailable
from models.webhookstore import DeliveryRecord, WebhookRecord, WebhookStore
from protocol.backoff import exponential_delay
from protocol.errors import invalid_params, not_found
from protocol.times import iso_utc

from ..events import NOTICE_TOPIC, NOTICES, EventBus
from ..ticker import Ticker
from . import sender
from .sender import Outcome

log = logging.getLogger(__name__)

ANY_EVENT = "*"
EVENT_NAMES = (*NOTICES, ANY_EVENT)
QUEUE_LIMIT = 1000  # deliveries waiting per webhook (new and to be retried)
INTAKE_LIMIT = 10_000  # events taken in, not yet handed to the webhooks' queues
FAN_OUT_BATCH = 8  # events fanned out between two yields to the hub (≈ 40 deliveries)
POOL_SIZE = 16
FIRST_RETRY_S = 10.0
MAX_RETRY_S = 3600.0
GIVE_UP_AFTER_S = 86_400.0
FLUSH_S = 1.0
RECENT_DELIVERIES = 20  # kept in memory per webhook for the delivery log in its view
LOG_RETENTION_S = 7 * 86_400.0  # finished deliveries stored this long
PRUNE_EVERY_S = 3600.0
IDLE_WAIT_S = 1.0
MAX_WEBHOOKS = 100
MAX_URL_LENGTH = 2000

Post = Callable[[str, dict[str, str], bytes], Outcome]


def retry_delay(attempts: int, first_s: float = FIRST_RETRY_S) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (1 for the first)."""
    return exponential_delay(attempts - 1, first_s, MAX_RETRY_S)


def check_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(events))
    if not chosen:
        raise invalid_params(
            f"events must name at least one event: {', '.join(EVENT_NAMES)}", "no_events"
        )
    unknown = [event for event in chosen if event not in EVENT_NAMES]
    if unknown:
        raise invalid_params(
            f"unknown event {unknown[0]!r}: expected some of {', '.join(EVENT_NAMES)}",
            "unknown_event",
        )
    return chosen


def delivery_view(delivery: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event": delivery.event,
        "time": iso_utc(delivery.created),
        "state": delivery.state,
        "attempts": delivery.attempts,
        "status_code": delivery.status_code,
        "latency_ms": delivery.latency_ms,
        "error": delivery.error,
        "next_try": iso_utc(delivery.next_try) if delivery.state == "pending" else None,
    }


class DeliveryQueue:
    """A webhook's waiting deliveries: in the order they were queued (the oldest is the one a
    full queue drops) and by due time (a heap, whose entries for deliveries no longer waiting
    are skipped when they come up and swept when they outnumber the waiting ones). Every
    operation is O(1) or O(log n): a full queue of a dead endpoint costs the hub nothing more."""

    def __init__(self) -> None:
        self._waiting: OrderedDict[int, DeliveryRecord] = OrderedDict()
        self._due: list[tuple[float, int]] = []

    def __len__(self) -> int:
        return len(self._waiting)

    def __iter__(self) -> Iterator[DeliveryRecord]:
        return iter(list(self._waiting.values()))

    def put(self, delivery: DeliveryRecord) -> None:
        self._waiting[delivery.id] = delivery
        heapq.heappush(self._due, (delivery.next_try or 0.0, delivery.id))
        if len(self._due) > 2 * len(self._waiting) + 64:
            self._due = [(d.next_try or 0.0, d.id) for d in self._waiting.values()]
            heapq.heapify(self._due)

    def pop_oldest(self) -> DeliveryRecord:
        return self._waiting.popitem(last=False)[1]

    def earliest(self) -> float | None:
        """When the next delivery is due; None when none waits."""
        due = self._due
        while due and self._stale(due[0]):
            heapq.heappop(due)
        return due[0][0] if due else None

    def take_due(self, now: float) -> DeliveryRecord | None:
        """The delivery due soonest, if it is due at `now`, taken off the queue."""
        earliest = self.earliest()
        if earliest is None or earliest > now:
            return None
        _, delivery_id = heapq.heappop(self._due)
        return self._waiting.pop(delivery_id)

    def clear(self) -> None:
        self._waiting.clear()
        self._due.clear()

    def _stale(self, entry: tuple[float, int]) -> bool:
        delivery = self._waiting.get(entry[1])
        return delivery is None or (delivery.next_try or 0.0) != entry[0]


class Hook:
    """One webhook at run time: its record, the deliveries waiting, the newest ones."""

    def __init__(self, rec: WebhookRecord) -> None:
        self.rec = rec
        self.queue = DeliveryQueue()
        self.recent: deque[DeliveryRecord] = deque(maxlen=RECENT_DELIVERIES)
        self.busy = False  # a delivery greenlet is working on it

    def wants(self, event: str) -> bool:
        return event in self.rec.events or ANY_EVENT in self.rec.events

    def next_due(self, now: float) -> DeliveryRecord | None:
        """The delivery due soonest, if its time has come, taken off the queue."""
        return self.queue.take_due(now)

    def view(self) -> dict[str, Any]:
        rec = self.rec
        return {
            "id": rec.id,
            "url": rec.url,
            "events": list(rec.events),
            "has_secret": bool(rec.secret),
            "created": iso_utc(rec.created),
            "delivered": rec.delivered,
            "failed": rec.failed,
            "dropped": rec.dropped,
            "queued": len(self.queue),
            "last_time": iso_utc(rec.last_time),
            "last_status": rec.last_status,
            "last_latency_ms": rec.last_latency_ms,
            "last_error": rec.last_error,
            "recent": [delivery_view(delivery) for delivery in reversed(self.recent)],
        }


class WebhookDispatcher:
    def __init__(
        self,
        store: WebhookStore,
        events: EventBus,
        wall: Callable[[], float],
        *,
        post: Post | None = None,
        queue_limit: int = QUEUE_LIMIT,
        intake_limit: int = INTAKE_LIMIT,
        pool_size: int = POOL_SIZE,
        first_retry_s: float = FIRST_RETRY_S,
    ) -> None:
        self.store = store
        self.events = events
        self.wall = wall
        self._sender = sender.Sender()
        self.post: Post = post or self._sender.post
        self.queue_limit = queue_limit
        self.intake_limit = intake_limit
        self.intake_dropped = 0  # events dropped (oldest first) because the intake was full
        self._intake: deque[tuple[bytes, float]] = deque()
        self.first_retry_s = first_retry_s
        self.hooks: dict[int, Hook] = {}
        self._pool = Pool(pool_size)
        self._wake = Event()
        self._loop: gevent.Greenlet | None = None
        self._flusher = Ticker("webhooks", FLUSH_S, self.flush)
        self._dirty_hooks: dict[int, WebhookRecord] = {}
        self._dirty_deliveries: dict[int, DeliveryRecord] = {}
        self._next_delivery_id = 1
        self._last_prune = 0.0

    # -- life cycle ------------------------------------------------------------------------------
    def load(self) -> None:
        for rec in self.store.load_webhooks():
            self.hooks[rec.id] = Hook(rec)
        pending = self.store.load_pending()
        for delivery in pending:
            hook = self.hooks.get(delivery.webhook_id)
            if hook is not None:
                hook.queue.put(delivery)
                hook.recent.append(delivery)
        self._next_delivery_id = self.store.max_delivery_id() + 1
        if self.hooks:
            log.info("loaded %d webhooks, %d deliveries to retry", len(self.hooks), len(pending))

    def start(self) -> None:
        self.events.subscribe(self, [NOTICE_TOPIC])
        self._loop = gevent.spawn(self._run)
        self._flusher.start()

    def stop(self) -> None:
        """Stop delivering: attempts in flight are abandoned (a stored delivery stays pending and
        is retried after a restart). The master stores the delivery log after its drain
        (`store_log`), once the database had its chance to come back."""
        self.events.unsubscribe(self)
        if self._loop is not None:
            self._loop.kill()
            self._loop = None
        self._pool.kill(timeout=1.0)
        self._sender.close()
        self._flusher.stop()

    def store_log(self) -> None:
        """Store what changed since the last flush, at shutdown; say what is lost if it can't."""
        try:
            self.flush(prune=False)
        except DatabaseUnavailable:
            log.warning(
                "webhooks: %d webhooks' counters and %d deliveries not stored (database "
                "unavailable): retries waiting in them are lost",
                len(self._dirty_hooks),
                len(self._dirty_deliveries),
            )
        except Exception:
            log.exception("webhooks: could not store the delivery log")

    # -- the operator's verbs --------------------------------------------------------------------
    def create(self, url: str, events: list[str], secret: str | None, now: float) -> Hook:
        try:
            sender.check_url(url)
        except ValueError as exc:
            raise invalid_params(str(exc), "bad_url") from None
        if len(url) > MAX_URL_LENGTH:
            raise invalid_params(f"webhook URL longer than {MAX_URL_LENGTH} characters", "bad_url")
        if len(self.hooks) >= MAX_WEBHOOKS:
            raise invalid_params(f"at most {MAX_WEBHOOKS} webhooks", "too_many_webhooks")
        rec = WebhookRecord(
            id=max(self.hooks, default=0) + 1,
            url=url,
            events=check_events(events),
            secret=secret or None,
            created=now,
        )
        self.store.save_webhook(rec)  # stored before the call is answered
        hook = Hook(rec)
        self.hooks[rec.id] = hook
        log.info("webhook %d created: %s for %s", rec.id, url, ", ".join(rec.events))
        return hook

    def delete(self, webhook_id: int) -> None:
        hook = self.get(webhook_id)
        self.store.delete_webhook(webhook_id)
        del self.hooks[webhook_id]
        self._dirty_hooks.pop(webhook_id, None)
        for delivery in [*hook.queue, *hook.recent]:
            self._dirty_deliveries.pop(delivery.id, None)
        hook.queue.clear()
        log.info("webhook %d deleted: %s", webhook_id, hook.rec.url)

    def get(self, webhook_id: int) -> Hook:
        hook = self.hooks.get(webhook_id)
        if hook is None:
            raise not_found(f"no webhook {webhook_id}", "no_such_webhook")
        return hook

    def views(self) -> list[dict[str, Any]]:
        return [self.hooks[webhook_id].view() for webhook_id in sorted(self.hooks)]

    def status(self) -> dict[str, Any]:
        return {
            "webhooks": len(self.hooks),
            "webhook_deliveries_queued": sum(len(hook.queue) for hook in self.hooks.values()),
        }

    # -- the hub's side: an EventBus subscriber ---------------------------------------------------
    def send_bytes(self, data: bytes) -> None:
        """Take an event in: one append to the bounded intake, nothing parsed here. The call
        that emitted it pays only this; the loop fans it out to the webhooks' queues."""
        if not self.hooks:
            return
        intake = self._intake
        if len(intake) >= self.intake_limit:
            intake.popleft()
            self.intake_dropped += 1
            if self.intake_dropped in (1, 10, 100) or self.intake_dropped % 1000 == 0:
                log.warning("webhooks: intake full, dropped %d events so far", self.intake_dropped)
        intake.append((data, self.wall()))
        self._wake.set()

    def fan_out(self) -> int:
        """Hand every event taken in to the queues of the webhooks that want it; how many."""
        intake = self._intake
        count = 0
        while intake:
            data, now = intake.popleft()
            notice = (orjson.loads(data).get("params") or {}).get("data") or {}
            event = notice.get("event")
            if isinstance(event, str):
                self.enqueue(event, notice.get("data"), now)
            count += 1
            if count % FAN_OUT_BATCH == 0:
                gevent.sleep(0)  # a burst of events never holds the hub for long
        return count

    def enqueue(self, event: str, data: Any, now: float) -> int:
        """Queue the event for every webhook that wants it; how many did."""
        body: bytes | None = None
        queued = 0
        for hook in self.hooks.values():
            if not hook.wants(event):
                continue
            if body is None:
                body = orjson.dumps({"event": event, "time": iso_utc(now), "data": data})
            delivery = DeliveryRecord(
                self._next_delivery_id, hook.rec.id, event, now, body, "pending", 0, now,
                None, None, None, now,
            )  # fmt: skip
            self._next_delivery_id += 1
            hook.queue.put(delivery)
            hook.recent.append(delivery)
            self._bound(hook, now)
            queued += 1
        if queued:
            self._wake.set()
        return queued

    def _bound(self, hook: Hook, now: float) -> None:
        while len(hook.queue) > self.queue_limit:
            dropped = hook.queue.pop_oldest()
            dropped.state = "dropped"
            dropped.next_try = None
            dropped.updated = now
            hook.rec.dropped += 1
            self._dirty_hooks[hook.rec.id] = hook.rec
            if dropped.attempts:  # stored as pending: store that it will not be retried
                self._dirty_deliveries[dropped.id] = dropped
            if hook.rec.dropped in (1, 10, 100) or hook.rec.dropped % 1000 == 0:
                log.warning(
                    "webhook %d (%s): queue full, dropped %d deliveries so far",
                    hook.rec.id,
                    hook.rec.url,
                    hook.rec.dropped,
                )

    # -- delivering ------------------------------------------------------------------------------
    def run_once(self, now: float) -> int:
        """Fan out what was taken in and attempt every delivery due at `now`, here and now
        (tests; the loop uses the pool)."""
        self.fan_out()
        attempted = 0
        for hook in list(self.hooks.values()):
            while (delivery := hook.next_due(now)) is not None:
                self.attempt(hook, delivery, now)
                attempted += 1
        return attempted

    def attempt(self, hook: Hook, delivery: DeliveryRecord, now: float | None = None) -> Outcome:
        """POST one delivery and record how it went; schedule its retry or give it up."""
        rec = hook.rec
        headers = {"X-Farmhand-Event": delivery.event}
        if rec.secret:
            headers["X-Farmhand-Signature"] = sender.signature(rec.secret, delivery.body)
        outcome = self.post(rec.url, headers, delivery.body)
        now = self.wall() if now is None else now
        delivery.attempts += 1
        delivery.status_code = outcome.status
        delivery.latency_ms = round(outcome.latency_ms, 2)
        delivery.error = outcome.error
        delivery.updated = now
        rec.last_time = now
        rec.last_status = outcome.status
        rec.last_latency_ms = delivery.latency_ms
        rec.last_error = outcome.error
        if outcome.ok:
            delivery.state = "delivered"
            delivery.next_try = None
            rec.delivered += 1
        elif (
            now - delivery.created + retry_delay(delivery.attempts, self.first_retry_s)
            > GIVE_UP_AFTER_S
        ):
            delivery.state = "failed"
            delivery.next_try = None
            rec.failed += 1
            log.warning(
                "webhook %d (%s): gave up delivery %d (%s) after %d attempts: %s",
                rec.id, rec.url, delivery.id, delivery.event, delivery.attempts, outcome.error,
            )  # fmt: skip
        else:
            delivery.next_try = now + retry_delay(delivery.attempts, self.first_retry_s)
            if rec.id in self.hooks:
                hook.queue.put(delivery)
                self._bound(hook, now)
            log.info(
                "webhook %d (%s): delivery %d (%s) failed (%s), retry in %.0f s",
                rec.id, rec.url, delivery.id, delivery.event, outcome.error,
                delivery.next_try - now,
            )  # fmt: skip
        if rec.id in self.hooks:
            self._dirty_hooks[rec.id] = rec
            # A delivery that went through at once is only counted: storing each one would
            # cost a row per event and webhook. One that failed is stored, to be retried.
            if not (outcome.ok and delivery.attempts == 1):
                self._dirty_deliveries[delivery.id] = delivery
        return outcome

    def _run(self) -> None:
        while True:
            self.fan_out()
            now = self.wall()
            earliest: float | None = None
            for hook in list(self.hooks.values()):
                if hook.busy or not hook.queue:
                    continue
                due = hook.queue.earliest()
                if due is not None and due <= now and self._pool.free_count() > 0:
                    hook.busy = True
                    self._pool.spawn(self._work, hook)
                elif due is not None:
                    earliest = due if earliest is None else min(earliest, due)
            wait_s = IDLE_WAIT_S if earliest is None else max(0.0, min(IDLE_WAIT_S, earliest - now))
            self._wake.clear()
            self._wake.wait(wait_s)

    def _work(self, hook: Hook) -> None:
        try:
            while hook.rec.id in self.hooks and (delivery := hook.next_due(self.wall())):
                self.attempt(hook, delivery)
        except Exception:
            log.exception("webhook %d: delivery failed unexpectedly", hook.rec.id)
        finally:
            hook.busy = False
            self._wake.set()

    # -- storing ---------------------------------------------------------------------------------
    def flush(self, prune: bool = True) -> None:
        """Store the counters and deliveries changed since the last flush; prune old ones."""
        hooks, self._dirty_hooks = list(self._dirty_hooks.values()), {}
        deliveries, self._dirty_deliveries = list(self._dirty_deliveries.values()), {}
        try:
            if hooks or deliveries:
                self.store.save_changes(hooks, deliveries)
        except Exception:
            for rec in hooks:  # kept for the next flush
                self._dirty_hooks.setdefault(rec.id, rec)
            for delivery in deliveries:
                self._dirty_deliveries.setdefault(delivery.id, delivery)
            raise
        now = self.wall()
        if prune and now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            self.store.prune(now - LOG_RETENTION_S)
