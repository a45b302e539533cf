"""Named farm events (`job.completed`, `keg.low`, …) reach the `notices` subscribers as
`{event, data}`, encoded like every other event; an unknown name is a programming error."""

from __future__ import annotations

import orjson
import pytest

from farmhand.master.events import NOTICE_TOPIC, NOTICES, EventBus, validate_topic

pytestmark = pytest.mark.fast


class Inbox:
    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def send_bytes(self, data: bytes) -> None:
        self.events.append(orjson.loads(data)["params"])


def test_a_notice_reaches_the_notices_subscribers_only() -> None:
    bus = EventBus()
    notices, jobs = Inbox(), Inbox()
    bus.subscribe(notices, [validate_topic(NOTICE_TOPIC)])
    bus.subscribe(jobs, ["jobs"])
    bus.notify("job.completed", {"id": 7})
    assert notices.events == [
        {"topic": "notices", "data": {"event": "job.completed", "data": {"id": 7}}}
    ]
    assert jobs.events == []


def test_an_unknown_notice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown notice 'job\.exploded'"):
        EventBus().notify("job.exploded", {})
    assert {"job.completed", "job.failed", "keg.low", "sensor.alert"} <= set(NOTICES)
