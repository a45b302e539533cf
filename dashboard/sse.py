"""Server-Sent Events: one upstream subscription to the master, fanned out to every browser.

Why one upstream connection and not one per browser: the master encodes each event once per
subscriber connection and caps each subscriber's backlog, so N browsers with their topics would
cost it N times the work and N sockets. Here the dashboard subscribes once to the base topics
(and to `log:<task_id>` only while some browser watches that task), encodes each event once as
an SSE frame, and copies the bytes into each interested browser's bounded queue. A browser
that falls too far behind is cut off; its EventSource reconnects and the page refetches.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from gevent.queue import Empty, Full, Queue

log = logging.getLogger(__name__)

BASE_TOPICS = (
    "clients", "jobs", "tasks", "pours", "presence", "readings", "events", "previews", "notices",
)  # fmt: skip
LOCAL_TOPICS = ("throughput",)  # produced by the dashboard itself
QUEUE_FRAMES = 2000
HEARTBEAT_S = 15.0
RETRY_MS = 2000


def sse_frame(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def event_name(topic: str) -> str:
    return "log" if topic.startswith("log:") else topic


class Listener:
    """One browser's stream: the topics it wants and a bounded queue of frames."""

    def __init__(self, topics: frozenset[str]):
        self.topics = topics
        self.queue: Queue = Queue(maxsize=QUEUE_FRAMES)
        self.overflowed = False

    def offer(self, frame: bytes) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(frame)
        except Full:
            self.overflowed = True


class EventHub:
    """Fans master events out to listeners; refcounts the per-task log subscriptions."""

    def __init__(
        self,
        subscribe: Callable[[list[str]], None],
        unsubscribe: Callable[[list[str]], None],
        observers: list[Callable[[str, Any], None]] | None = None,
    ):
        self._subscribe = subscribe
        self._unsubscribe = unsubscribe
        self.observers = observers or []
        self.listeners: set[Listener] = set()
        self._log_refs: Counter[str] = Counter()
        self.master_up = False

    def start(self) -> None:
        self._subscribe(list(BASE_TOPICS))

    # -- fed by the master client ----------------------------------------------------------------
    def publish(self, topic: str, data: Any) -> None:
        for observe in self.observers:
            observe(topic, data)
        wanted = [listener for listener in self.listeners if topic in listener.topics]
        if not wanted:
            return
        frame = sse_frame(event_name(topic), data)
        for listener in wanted:
            listener.offer(frame)

    def master_state(self, up: bool) -> None:
        self.master_up = up
        frame = sse_frame("master", {"up": up})
        for listener in self.listeners:
            listener.offer(frame)

    # -- browsers ----------------------------------------------------------------------------------
    def join(self, topics: frozenset[str]) -> Listener:
        listener = Listener(topics)
        self.listeners.add(listener)
        fresh = [t for t in topics if t.startswith("log:") and self._log_refs[t] == 0]
        for topic in topics:
            if topic.startswith("log:"):
                self._log_refs[topic] += 1
        if fresh:
            self._subscribe(fresh)
        return listener

    def leave(self, listener: Listener) -> None:
        if listener not in self.listeners:
            return
        self.listeners.discard(listener)
        stale = []
        for topic in listener.topics:
            if topic.startswith("log:"):
                self._log_refs[topic] -= 1
                if self._log_refs[topic] <= 0:
                    del self._log_refs[topic]
                    stale.append(topic)
        if stale:
            self._unsubscribe(stale)

    def stream(self, listener: Listener, heartbeat_s: float = HEARTBEAT_S) -> Iterator[bytes]:
        """The body of one /events response; ends when the browser goes away or falls behind."""
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            yield sse_frame("master", {"up": self.master_up})
            while not listener.overflowed:
                try:
                    yield listener.queue.get(timeout=heartbeat_s)
                except Empty:
                    yield b": keep-alive\n\n"
            log.info("an event stream fell behind and was closed")
            yield sse_frame("overflow", {})
        finally:
            self.leave(listener)


def validate_topics(
    text: str, base: tuple[str, ...] = BASE_TOPICS + LOCAL_TOPICS
) -> frozenset[str]:
    """`jobs,tasks,log:12` → topics; ValueError names the first bad one."""
    topics = [t.strip() for t in text.split(",") if t.strip()]
    if not topics:
        raise ValueError("topics: give at least one topic")
    if len(topics) > 20:
        raise ValueError("topics: at most 20 topics")
    for topic in topics:
        if topic.startswith("log:"):
            if not (topic[4:].isascii() and topic[4:].isdigit()):
                raise ValueError(f"topics: bad log topic {topic!r}: expected log:<task id>")
        elif topic not in base:
            raise ValueError(f"topics: unknown topic {topic!r}: expected one of {', '.join(base)}")
    return frozenset(topics)
