"""Topics and subscribers: the master pushes `event` notifications to whoever subscribed.

An event is encoded once and the same bytes go to every subscriber; a subscriber's own bounded
send queue decides what happens when it cannot keep up (see farmhand/transport.py).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Protocol

from protocol.errors import invalid_params
from protocol.jsonrpc import encode_notification

log = logging.getLogger(__name__)

TOPICS = (
    "clients", "jobs", "tasks", "readings", "pours", "presence", "procs", "events", "notices",
    "previews",
)  # fmt: skip
# Named farm events, the ones webhooks, email and MQTT users are told of: each is published on
# the `notices` topic as `{event, data}` by `EventBus.notify`.
NOTICE_TOPIC = "notices"
NOTICES = (
    "job.completed",
    "job.failed",
    "job.canceled",
    "client.offline",
    "pour",
    "keg.low",
    "keg.ended",
    "session.started",
    "sensor.alert",
    "sensor.cleared",
)
LOG_TOPIC_PREFIX = "log:"


class Subscriber(Protocol):
    def send_bytes(self, data: bytes) -> None: ...


def validate_topic(topic: object) -> str:
    if not isinstance(topic, str) or not (
        topic in TOPICS or (topic.startswith(LOG_TOPIC_PREFIX) and len(topic) > 4)
    ):
        raise invalid_params(
            f"unknown topic {topic!r}: expected one of {', '.join(TOPICS)} or log:<task_id>",
            "unknown_topic",
        )
    return topic


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscriber]] = defaultdict(set)

    def subscribe(self, subscriber: Subscriber, topics: list[str]) -> None:
        for topic in topics:
            self._subscribers[topic].add(subscriber)

    def unsubscribe(self, subscriber: Subscriber, topics: list[str] | None = None) -> None:
        for topic in list(self._subscribers) if topics is None else topics:
            subscribers = self._subscribers.get(topic)
            if subscribers is not None:
                subscribers.discard(subscriber)
                if not subscribers:
                    del self._subscribers[topic]

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._subscribers.get(topic))

    def publish(self, topic: str, data: Any) -> None:
        subscribers = self._subscribers.get(topic)
        if not subscribers:
            return
        payload = encode_notification("event", {"topic": topic, "data": data})
        for subscriber in list(subscribers):
            subscriber.send_bytes(payload)

    def notify(self, event: str, data: Any) -> None:
        """Tell the `notices` subscribers (webhooks, the dashboard, MQTT) of a named farm event."""
        if event not in NOTICES:
            raise ValueError(f"unknown notice {event!r}")
        self.publish(NOTICE_TOPIC, {"event": event, "data": data})
