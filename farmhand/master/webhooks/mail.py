"""Email for finished jobs: an in-process subscriber of the `notices` topic that sends a short
message per job.completed / job.failed through SMTP (the standard library's smtplib), as the
config file's `[email]` table says (docs/webhooks.md).

smtplib blocks, so each message is sent in gevent's thread pool (real OS threads: the master is
not monkey-patched); the hub only appends to a bounded queue (drop-oldest, counted). A message
that cannot be sent is logged and not retried: email is a courtesy, webhooks are the record.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections import deque
from email.message import EmailMessage
from typing import Any

import gevent
import orjson
from gevent.event import Event

from ..config import EmailConfig
from ..events import NOTICE_TOPIC, EventBus

log = logging.getLogger(__name__)

QUEUE_LIMIT = 100


def job_message(config: EmailConfig, event: str, job: dict[str, Any]) -> EmailMessage:
    status = "completed" if event == "job.completed" else "failed"
    counts = job.get("tasks_by_status") or {}
    message = EmailMessage()
    message["Subject"] = f"farmhand: job {job.get('id')} ({job.get('name')}) {status}"
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    lines = [
        f"Job {job.get('id')} ({job.get('name')}) {status}.",
        "",
        f"Tasks: {job.get('tasks_total')} "
        + "("
        + ", ".join(f"{name} {count}" for name, count in counts.items() if count)
        + ")",
        f"Created: {job.get('created')}",
        f"Finished: {job.get('updated')}",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


def send_message(config: EmailConfig, message: EmailMessage) -> None:
    """Blocking: run in a thread."""
    smtp: smtplib.SMTP
    if config.ssl:
        smtp = smtplib.SMTP_SSL(
            config.host, config.port, timeout=config.timeout_s, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
    with smtp:
        if config.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if config.user:
            smtp.login(config.user, config.password or "")
        smtp.send_message(message)


class Mailer:
    def __init__(self, config: EmailConfig, events: EventBus) -> None:
        self.config = config
        self.events = events
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: deque[EmailMessage] = deque()
        self._wake = Event()
        self._loop: gevent.Greenlet | None = None

    def start(self) -> None:
        self.events.subscribe(self, [NOTICE_TOPIC])
        self._loop = gevent.spawn(self._run)
        log.info(
            "email for %s to %s via %s",
            ", ".join(self.config.events),
            ", ".join(self.config.to),
            self.config.host,
        )

    def stop(self) -> None:
        self.events.unsubscribe(self)
        if self._loop is not None:
            self._loop.kill()
            self._loop = None

    def send_bytes(self, data: bytes) -> None:
        notice = (orjson.loads(data).get("params") or {}).get("data") or {}
        event = notice.get("event")
        if event in self.config.events and isinstance(notice.get("data"), dict):
            if len(self._queue) >= QUEUE_LIMIT:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(job_message(self.config, event, notice["data"]))
            self._wake.set()

    def _run(self) -> None:
        pool = gevent.get_hub().threadpool
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._queue:
                message = self._queue.popleft()
                try:
                    pool.apply(send_message, (self.config, message))
                    self.sent += 1
                    log.info("email sent: %s", message["Subject"])
                except (OSError, smtplib.SMTPException) as exc:
                    self.failed += 1
                    log.warning("email not sent (%s): %s", message["Subject"], exc)
